#!/usr/bin/env bash
# update-runner-token.sh — put a new GitLab Runner authentication token into config.toml, or add or
# remove a runner's [[runners]] table.
#
# Usage:
#   update-runner-token.sh [--mode update] --config PATH --runner-id ID --url GITLAB_URL --token-file FILE
#                          [--previous-token-file FILE] [--expires-at ISO8601 [--unless-newer]]
#                          [--reload sighup|restart|none]
#   update-runner-token.sh --mode add --config PATH --runner-id NEW_ID --url GITLAB_URL --token-file FILE
#                          --from-runner-id OLD_ID [--expires-at ISO8601] [--reload sighup|restart|none]
#   update-runner-token.sh --mode remove --config PATH --runner-id ID --url GITLAB_URL
#                          [--reload sighup|restart|none]
#   Options a mode does not use are refused (exit 2).
#
# What --mode update (the default) does (see host/README.md for the operator view):
#   * selects the [[runners]] table whose `url` equals GITLAB_URL (a trailing slash on either side is
#     ignored) and whose `id` equals ID; when no table for that url has an `id` key (configs written
#     before GitLab 15.x), the one whose `token` equals the previous token (or already the new one);
#   * sets its `token`; when the token changes, sets `token_obtained_at` (now, UTC) if that key is
#     present; sets `token_expires_at` from --expires-at if that key is present;
#   * makes sure FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true in that runner's feature flags, so this
#     host never rotates the shared token on its own (which would strand every other host);
#   * leaves every other byte of the file as it was, writes atomically (temp file + rename) with the
#     original owner and mode, and keeps the previous file as PATH.bak (mode 0600).
#   The token is only ever read from FILE (best a pipe: /dev/stdin or /dev/fd/N, so it is never on disk),
#   once, and held in memory: it never appears in arguments, the environment, output or error messages.
#   It must be one line of at most 1 KB of UTF-8 without NUL, control characters, whitespace, quotes or
#   backslashes (exit 2 otherwise).
#   --unless-newer (update mode, with --expires-at; for a converge that re-applies the current token
#   and may race a rotation that has just written a newer one: the folder lock orders the two writes
#   but cannot tell which should win): under the lock, once the table is selected, if its
#   `token_expires_at` is a later instant than --expires-at and its token is another one, nothing is
#   written: "status=kept-newer … reload=skipped", exit 0. The two are compared as instants (seconds
#   since the epoch from the date and time less the offset, then the fraction of a second), never as
#   text: 2026-06-01T01:00:00+02:00 is earlier than 2026-06-01T00:00:00Z. A missing key, a value that
#   is not a date-time with a zone, and gitlab-runner's "unknown" (year 0001) are never later: the
#   table is updated (or already current) as without the option.
#
# --mode add (a new runner for this host, set up like an existing one):
#   * if a table with url GITLAB_URL and id NEW_ID exists already, it is treated as in update mode
#     (already current, or its token is updated): re-runs are idempotent;
#   * otherwise copies the whole section of the table with id OLD_ID (its header up to its last key
#     or sub-table, all sub-tables and arrays of tables included) as a new [[runners]] table, right
#     after that section and one blank line; in the copy: id = NEW_ID, the new token,
#     token_obtained_at = now and token_expires_at = --expires-at (or 0001-01-01T00:00:00Z, the
#     "unknown" of gitlab-runner, never the old runner's expiry) where the old table has those keys,
#     FF_DISABLE_AUTOMATIC_TOKEN_ROTATION = true. Everything else, `name` included, is copied as is
#     (gitlab-runner itself allows two tables with one name); the rest of the file is untouched.
#   * OLD_ID missing: exit 5; OLD_ID (or NEW_ID) in more than one table of that url: exit 6.
# --mode remove (no token file):
#   * removes the section of the table with url GITLAB_URL and id ID: the header, every key and
#     sub-table up to the next [[runners]] or top-level table, and the comment lines right above its
#     header (no blank line between); comments after its last key lead into the next table and
#     stay. One run of blank lines goes with it (the one before it when a blank line or the end of
#     the file follows it; at the start of the file, the one after it);
#   * no such table: already current (exit 0, nothing written). More than one: exit 6;
#   * the last runner of the file is removed like any other (gitlab-runner runs with no runners);
#     the previous file stays in PATH.bak.
# add and remove select by id only: a url whose tables have no id at all gives exit 5. A
# [runners.x] table of the selected runner that follows another top-level table gives exit 4.
#
# stdout (exactly one line on success):
#   status=updated|added|removed|already-current|kept-newer runner_id=ID config=PATH system_id=SID reload=MODE
#   MODE: sighup | restart | none | not-running | failed | skipped (already current, kept-newer)
#
# Exit codes:
#   0  updated, added, removed, already current or kept newer (stdout says which); also when only the
#      reload failed
#   1  unexpected internal error (a bug: please report it)
#   2  usage or bad argument (unknown option, bad runner id / url / expiry, bad token file or token,
#      --unless-newer outside update mode or without --expires-at)
#   3  config file missing, not a regular file, or unreadable
#   4  malformed TOML (or a target runner shape this tool will not edit)
#   5  no matching [[runners]] table (add: no table to copy)
#   6  more than one matching [[runners]] table (add: for the new or the old id)
#   7  config file or its directory not writable, or writing the new file failed
# Errors are exactly one line on stderr: "update-runner-token: error: <what> (<where>)".
#
# Test hooks (environment; default to the real tools):
#   UPDATE_RUNNER_TOKEN_SYSTEMCTL  command used instead of `systemctl`
#   UPDATE_RUNNER_TOKEN_PKILL      command used instead of `pkill`
#
# Requires bash and POSIX/GNU coreutils tools only (awk, mktemp, mv, chmod, chown, stat, date, cat,
# od, readlink, sync; flock and, for a folder of a user-mode gitlab-runner, setpriv from util-linux);
# runs with mawk (Ubuntu) and gawk (Amazon Linux). An update runs about ten programs: the walker reads
# config.toml once and writes the new file and the backup itself.

set -euo pipefail
# Every file this script creates (temp file, backup) starts private; the new config.toml then gets
# the original's mode with chmod.
umask 077
# Byte semantics for awk length()/substr() and for regular expressions, whatever the host locale.
export LC_ALL=C

readonly PROG=update-runner-token
# 4 (malformed TOML), 5 (no match) and 6 (several matches) come from the awk walker's verdicts.
readonly E_INTERNAL=1 E_USAGE=2 E_CONFIG=3 E_WRITE=7
readonly USAGE="usage: update-runner-token.sh --config PATH --runner-id ID --url GITLAB_URL --token-file FILE [--previous-token-file FILE] [--expires-at ISO8601 [--unless-newer]] [--reload sighup|restart|none] [--mode update|add|remove] (add: also --from-runner-id ID; remove: no --token-file)"

# Files to remove on exit unless they were renamed into place; the private folder of a user-mode update.
TMP_NEW=""
TMP_BAK=""
PRIVATE_DIR=""
# The descriptor holding the config folder's lock (take_lock), closed after the rename; the one the
# walker reads the config file from.
LOCK_FD="" CFG_FD=""

cleanup() {
  # Runs on every exit: a failure before the rename leaves no temp files behind.
  if [[ -n $TMP_NEW ]]; then rm -f -- "$TMP_NEW" 2>/dev/null || true; fi
  if [[ -n $TMP_BAK ]]; then rm -f -- "$TMP_BAK" 2>/dev/null || true; fi
  if [[ -n $PRIVATE_DIR ]]; then rm -rf -- "$PRIVATE_DIR" 2>/dev/null || true; fi
}
trap cleanup EXIT
# Without these, a signal would end bash without running the EXIT trap.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
# A file size limit (ulimit -f) would kill a writer with SIGXFSZ, and bash would print its own
# "File size limit exceeded" line. Ignored (inherited by children), it becomes an ordinary write
# error (EFBIG) that the checks below turn into exit 7 with one line.
trap '' XFSZ

# die CODE WHAT WHERE — the single stderr line every failure produces.
die() {
  printf '%s: error: %s (%s)\n' "$PROG" "$2" "$3" >&2
  exit "$1"
}

warn() {
  printf '%s: warning: %s (%s)\n' "$PROG" "$1" "$2" >&2
}

# ---------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------
CONFIG="" RUNNER_ID="" URL="" TOKEN_FILE="" PREV_TOKEN_FILE="" EXPIRES_AT="" RELOAD="" MODE="" FROM_ID=""
# --unless-newer (1 when given); the digits of the fraction of a second of --expires-at.
UNLESS_NEWER="" EXPIRES_FRAC=""
declare -A SEEN=()

set_opt() {
  # set_opt NAME VALUE — refuses repeats so a wrapper bug cannot silently pick one of two values.
  local name=$1 value=$2
  if [[ -n ${SEEN[$name]:-} ]]; then die "$E_USAGE" "option $name given twice" "arguments"; fi
  SEEN[$name]=1
  case $name in
    --config) CONFIG=$value ;;
    --runner-id) RUNNER_ID=$value ;;
    --url) URL=$value ;;
    --token-file) TOKEN_FILE=$value ;;
    --previous-token-file) PREV_TOKEN_FILE=$value ;;
    --expires-at) EXPIRES_AT=$value ;;
    --reload) RELOAD=$value ;;
    --mode) MODE=$value ;;
    --from-runner-id) FROM_ID=$value ;;
    --unless-newer) UNLESS_NEWER=$value ;;
  esac
}

parse_args() {
  local arg name total=$#
  while (($# > 0)); do
    arg=$1
    case $arg in
      -h | --help)
        printf '%s\n' "$USAGE"
        exit 0
        ;;
      --config=* | --runner-id=* | --url=* | --token-file=* | --previous-token-file=* | --expires-at=* | --reload=* | --mode=* | --from-runner-id=*)
        set_opt "${arg%%=*}" "${arg#*=}"
        shift
        ;;
      --config | --runner-id | --url | --token-file | --previous-token-file | --expires-at | --reload | --mode | --from-runner-id)
        if (($# < 2)); then die "$E_USAGE" "option $arg needs a value" "arguments"; fi
        set_opt "$arg" "$2"
        shift 2
        ;;
      --unless-newer)
        set_opt "$arg" 1
        shift
        ;;
      --unless-newer=*)
        die "$E_USAGE" "option --unless-newer takes no value" "arguments"
        ;;
      -*)
        # Only the option name is echoed (never "=value": a mistaken --token=… must not leak).
        name=${arg%%=*}
        die "$E_USAGE" "unknown option $name; $USAGE" "arguments"
        ;;
      *)
        # A stray positional argument could be a token pasted by mistake: do not echo it.
        die "$E_USAGE" "unexpected argument #$((total - $# + 1)); $USAGE" "arguments"
        ;;
    esac
  done
}

# The tokens, read once by check_token_file and then held only in this shell's memory (never exported,
# never in a file): with_tokens hands them to each run of the TOML walker on pipes.
TOKEN="" PREV_TOKEN=""
readonly TOKEN_MAX_BYTES=1024

# check_token_file FILE OPTION VAR — reads the token from FILE once, checks it and keeps it in VAR.
# FILE is a regular file, a named pipe, /dev/stdin, or /dev/fd/N (N 0 or 3-9: a descriptor this script
# was started with, read as a descriptor, so a socket works too, then closed: no child gets it). The
# token must be one line of at most 1 KB of valid UTF-8 without NUL, control characters, whitespace,
# quotes or backslashes (so it goes into a TOML string as is, and gitlab-runner's TOML parser accepts
# it). It is never printed: every error names only the option and FILE.
# The bytes go through od (coreutils), so a NUL is seen too (a shell variable cannot hold one). UTF-8 is
# checked with an exact RFC 3629 pattern over od's hex rather than with iconv: glibc's iconv (on Amazon
# Linux 2023 and Ubuntu 22.04 alike) accepts F4 90 80 80 and up, beyond U+10FFFF, which Go's TOML
# parser (gitlab-runner) refuses. od is coreutils on both; -N reads no more than it needs.
check_token_file() {
  local file=$1 opt=$2 var=$3 fd="" hex c=' [89ab][0-9a-f]' utf8
  case $file in
    /dev/stdin) fd=0 ;;
    /dev/fd/*) fd=${file#/dev/fd/} ;;
  esac
  if [[ -n $fd ]]; then
    if [[ ! $fd =~ ^[03-9]$ ]] || ! { true <&"$fd"; } 2>/dev/null; then die "$E_USAGE" "token descriptor is not open, or not 0 or 3-9" "$opt $file"; fi
    hex=$(od -An -v -tx1 -N $((TOKEN_MAX_BYTES + 2)) <&"$fd" 2>/dev/null) || die "$E_USAGE" "token file is not readable" "$opt $file"
    if ((fd == 0)); then exec </dev/null; else exec {fd}<&-; fi
  else
    if [[ ! -e $file ]]; then die "$E_USAGE" "token file does not exist" "$opt $file"; fi
    if [[ ! -f $file && ! -p $file ]]; then die "$E_USAGE" "token file is not a regular file or a pipe" "$opt $file"; fi
    if [[ ! -r $file ]]; then die "$E_USAGE" "token file is not readable" "$opt $file"; fi
    hex=$(od -An -v -tx1 -N $((TOKEN_MAX_BYTES + 2)) -- "$file" 2>/dev/null) || die "$E_USAGE" "token file is not readable" "$opt $file"
  fi
  # One " xx" per byte, less one final newline.
  hex=${hex//$'\n'/}
  hex=${hex% 0a}
  if [[ -z $hex ]]; then die "$E_USAGE" "token file is empty" "$opt $file"; fi
  if ((${#hex} > 3 * TOKEN_MAX_BYTES)); then die "$E_USAGE" "token is longer than $TOKEN_MAX_BYTES bytes" "$opt $file"; fi
  if [[ $hex == *" 0a"* ]]; then die "$E_USAGE" "token file must hold exactly one line" "$opt $file"; fi
  if [[ $hex == *" 00"* ]]; then die "$E_USAGE" "token holds a NUL byte" "$opt $file"; fi
  if [[ $hex =~ \ (0[9a-d]|20|22|27|5c) ]]; then
    die "$E_USAGE" "token file must hold one token without whitespace, quotes or backslashes" "$opt $file"
  fi
  if [[ $hex == *" "[01]* || $hex == *" 7f"* ]]; then die "$E_USAGE" "token holds a control character" "$opt $file"; fi
  utf8="^( [0-7][0-9a-f]| (c[2-9a-f]|d[0-9a-f])$c| e0 [ab][0-9a-f]$c| (e[1-9a-c]|e[ef])$c$c| ed [89][0-9a-f]$c| f0 (9[0-9a-f]|[ab][0-9a-f])$c$c| f[1-3]$c$c$c| f4 8[0-9a-f]$c$c)*\$"
  if [[ $hex == *" "[89a-f]* && ! $hex =~ $utf8 ]]; then die "$E_USAGE" "token is not valid UTF-8" "$opt $file"; fi
  printf -v "$var" '%b' "${hex// /\\x}"
}

# with_tokens COMMAND... — runs COMMAND (the walker) with the new token on descriptor 3 and the previous
# one on descriptor 4: pipes from this shell's memory, fresh for each run (a pipe is read only once).
with_tokens() {
  if [[ -z $TOKEN ]]; then
    "$@"
  elif [[ -z $PREV_TOKEN ]]; then
    "$@" 3< <(printf '%s\n' "$TOKEN")
  else
    "$@" 3< <(printf '%s\n' "$TOKEN") 4< <(printf '%s\n' "$PREV_TOKEN")
  fi
}

validate_args() {
  local missing="" opt
  MODE=${MODE:-update}
  case $MODE in
    update) ;;
    add) [[ -n ${SEEN[--from-runner-id]:-} ]] || missing+=" --from-runner-id" ;;
    remove) TOKEN_FILE="" ;;
    *) die "$E_USAGE" "mode must be update, add or remove, got '$MODE'" "--mode" ;;
  esac
  [[ -n ${SEEN[--config]:-} ]] || missing+=" --config"
  [[ -n ${SEEN[--runner-id]:-} ]] || missing+=" --runner-id"
  [[ -n ${SEEN[--url]:-} ]] || missing+=" --url"
  [[ $MODE == remove || -n ${SEEN[--token-file]:-} ]] || missing+=" --token-file"
  if [[ -n $missing ]]; then die "$E_USAGE" "missing required option(s)$missing; $USAGE" "arguments"; fi
  # Options a mode does not use are refused rather than ignored.
  for opt in --token-file --previous-token-file --expires-at --from-runner-id --unless-newer; do
    case $MODE:$opt in
      update:--from-runner-id | add:--previous-token-file | add:--unless-newer | remove:--*)
        if [[ -n ${SEEN[$opt]:-} ]]; then die "$E_USAGE" "option $opt is not used by --mode $MODE" "$opt"; fi
        ;;
    esac
  done
  if [[ $MODE == add ]] && [[ ! $FROM_ID =~ ^[1-9][0-9]*$ || $FROM_ID == "$RUNNER_ID" ]]; then
    die "$E_USAGE" "runner id to copy must be a positive integer other than --runner-id, got '$FROM_ID'" "--from-runner-id"
  fi

  if [[ -z $CONFIG ]]; then die "$E_USAGE" "--config must not be empty" "--config"; fi
  # Compared as a string of digits (no arithmetic): ids never overflow and never have leading zeros.
  if [[ ! $RUNNER_ID =~ ^[1-9][0-9]*$ ]]; then
    die "$E_USAGE" "runner id must be a positive integer, got '$RUNNER_ID'" "--runner-id"
  fi
  if [[ ! $URL =~ ^https?://[^[:space:][:cntrl:]]+$ ]]; then
    die "$E_USAGE" "url must start with http:// or https:// and contain no whitespace" "--url"
  fi
  RELOAD=${RELOAD:-sighup}
  case $RELOAD in
    sighup | restart | none) ;;
    *) die "$E_USAGE" "reload mode must be sighup, restart or none, got '$RELOAD'" "--reload" ;;
  esac
  if [[ -n ${SEEN[--expires-at]:-} ]]; then
    # A TOML offset date-time as GitLab returns it; normalised to the form gitlab-runner writes
    # itself (UTC, whole seconds), e.g. 2024-05-01T12:00:00.000+02:00 -> 2024-05-01T10:00:00Z.
    local re='^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$'
    if [[ ! $EXPIRES_AT =~ $re ]]; then
      die "$E_USAGE" "expiry must be an ISO 8601 date-time with a zone, e.g. 2025-01-31T12:00:00Z" "--expires-at"
    fi
    # date drops the fraction of a second; --unless-newer compares it too.
    EXPIRES_FRAC=${BASH_REMATCH[1]#.}
    if ! EXPIRES_AT=$(date -u -d "$EXPIRES_AT" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null); then
      die "$E_USAGE" "expiry must be an ISO 8601 date-time with a zone, e.g. 2025-01-31T12:00:00Z" "--expires-at"
    fi
  elif [[ -n $UNLESS_NEWER ]]; then
    # Newer than what? Only an expiry can tell a newer token from an older one.
    die "$E_USAGE" "option --unless-newer needs --expires-at" "--unless-newer"
  fi
  # From here on the walker reads the tokens from with_tokens' pipes.
  if [[ $MODE != remove ]]; then
    check_token_file "$TOKEN_FILE" --token-file TOKEN
    TOKEN_FILE=/dev/fd/3
  fi
  if [[ -n ${SEEN[--previous-token-file]:-} ]]; then
    check_token_file "$PREV_TOKEN_FILE" --previous-token-file PREV_TOKEN
    PREV_TOKEN_FILE=/dev/fd/4
  fi
}

# ---------------------------------------------------------------------------------------------------
# The TOML walker: one awk program that reads config.toml once, on stdin.
#   It validates the whole file, selects the runner and decides: "ok current", "ok kept-newer"
#   (--unless-newer: the table's token expires later), or a change (VERB: change, add or remove;
#   URT_MODE update, the default, or add or remove).
#   plan  (no URT_OUT): prints "ok VERB" for a change and writes nothing.
#   apply (URT_OUT set): makes the new file in memory and proves it (below), then writes the input's
#         own bytes to URT_BAK (when set) and the new file to URT_OUT, announcing each write first
#         ("writing backup", "writing new": a write that kills awk names itself), and prints
#         "ok VERB BYTES CHECK" (BYTES of the new file).
#   The proof of the new file. CHECK "local": an update whose every edit is local, so the walker's
#   pass over the input proves the rest: a one-line value of the selected runner replaced by a
#   value of the same kind, or lines inserted right after a complete line of that runner (never
#   inside a multi-line value) whose key or table the runner does not define yet (the walker's table
#   of what is defined where says so). Each edited or inserted line is then read again on its own
#   (key, value, nothing after it) and must hold what was meant (the token in place, the flag true).
#   CHECK "readback": add, remove, and any other edit (an inline feature_flags table gains a key; a
#   key or table of that name exists already): the caller reads the new file back with this program,
#   which must find it valid and current.
# Errors print "err CODE MESSAGE". Inputs come through the environment (awk -v would interpret
# backslashes) and the tokens through their files (never through arguments or the environment).
# It is a line-based checker: it tokenises strings, brackets and comments well enough to never be
# fooled by `[[runners]]` or `token = …` inside a multi-line string or a comment. It also checks the
# TOML grammar of values (numbers, dates and times, escapes, commas in arrays and inline tables) and
# that no table or key is defined twice (headers, dotted keys, arrays of tables).
# ---------------------------------------------------------------------------------------------------
# shellcheck disable=SC2016 # the awk program is single-quoted on purpose
AWK_PROG='
function bad(msg) { if (err == "") { err = msg; errcode = 4; errline = NR } return 0 }
function bad_at(line, msg) { if (err == "") { err = msg; errcode = 4; errline = line } return 0 }
function fail(code, msg) { if (err == "") { err = msg; errcode = code; errline = 0 } }
# Runs of blanks, bare-value and bare-key characters: one match() per window of the line, not one
# step per character (a window doubles while the run fills it, so the work stays linear in the run).
function skip_ws(s, p,    c, w) {
  c = substr(s, p, 1)
  if (c != " " && c != "\t") return p
  for (w = 16; match(substr(s, p, w), /^[ \t]+/); w *= 2) { p += RLENGTH; if (RLENGTH < w) break }
  return p
}
function bare_end(s, p,    w) {
  for (w = 32; match(substr(s, p, w), /^[A-Za-z0-9_+.:-]+/); w *= 2) { p += RLENGTH; if (RLENGTH < w) break }
  return p - 1
}
function key_end(s, p,    w) {
  for (w = 32; match(substr(s, p, w), /^[A-Za-z0-9_-]+/); w *= 2) { p += RLENGTH; if (RLENGTH < w) break }
  return p - 1
}

# Length of the escape sequence at s[p] (a backslash) in a basic string, or 0 when it is not valid
# TOML (1.0, plus \e and \xHH of 1.1). mlb: in a multi-line basic string, where a backslash that
# ends the line (trailing blanks allowed) is a line-ending backslash.
function esc_len(s, p, mlb,    d, n, h) {
  d = substr(s, p + 1, 1)
  if (d != "" && index("btnfre\"\\", d)) return 2
  if (d == "x") n = 2
  else if (d == "u") n = 4
  else if (d == "U") n = 8
  else if (mlb && substr(s, p + 1) ~ /^[ \t]*$/) return length(s) - p + 1
  else return 0
  h = substr(s, p + 2, n)
  if (length(h) != n || h ~ /[^0-9A-Fa-f]/) return 0
  if (n > 2) {
    # A Unicode scalar value: at most 10FFFF and no surrogate.
    h = toupper(h); sub(/^0+/, "", h)
    if (length(h) > 6 || (length(h) == 6 && h > "10FFFF") || (length(h) == 4 && h >= "D800" && h <= "DFFF")) return 0
  }
  return n + 2
}

# Sets SERR for an escape sequence that is not valid at s[p]; returns 0.
function esc_bad(s, p) { SERR = "invalid escape sequence \\" substr(s, p + 1, 1) " in a string"; return 0 }

# Position of the quote that closes the one-line string opening at p, or 0 (SERR says why).
function str_end(s, p,    q, c, e, w) {
  SERR = "unterminated string"
  q = substr(s, p, 1); p++
  if (q == "\047") {
    # Looked for in windows that double, never in the whole rest of the line (a copy of it for
    # each string: quadratic on a line of many strings); linear in the length of the string.
    for (w = 64; ; w *= 2) {
      e = index(substr(s, p, w), "\047")
      if (e) return p + e - 1
      if (p + w > length(s)) return 0
    }
  }
  # From one quote or backslash to the next, found in windows as above.
  w = 32
  while (p <= length(s)) {
    if (!match(substr(s, p, w), /["\\]/)) { p += w; w *= 2; continue }
    p += RSTART - 1; w = 32
    if (substr(s, p, 1) == "\\") {
      if (p == length(s)) return 0
      e = esc_len(s, p, 0)
      if (!e) return esc_bad(s, p)
      p += e; continue
    }
    return p
  }
  return 0
}

# \n, \t and \r decoded, any other \X read as X, a lone backslash at the end kept. With gsub, which is
# linear in mawk and gawk alike; appending one character at a time is not (mawk copies the whole
# string on every append: minutes for a string of a few hundred KB). An escaped backslash is \001
# meanwhile: no line holds a control character (checked before anything is parsed). A replacement of
# one backslash ("\\") means one backslash in both awks ("\\\\" gives two in gawk).
function unescape(v,    t) {
  if (!index(v, "\\")) return v
  gsub(/\\\\/, "\001", v)
  t = ""
  if (substr(v, length(v)) == "\\") { t = "\\"; v = substr(v, 1, length(v) - 1) }
  gsub(/\\n/, "\n", v); gsub(/\\t/, "\t", v); gsub(/\\r/, "\r", v)
  gsub(/\\/, "", v); gsub(/\001/, "\\", v)
  return v t
}

# A[lo..hi] joined with sep, halves first: O(n log n) bytes copied, where appending one part at a
# time copies the whole result each time (quadratic for a key of thousands of dotted parts).
function tjoin(A, lo, hi, sep,    mid) {
  if (lo >= hi) return lo == hi ? A[lo] : ""
  mid = int((lo + hi) / 2)
  return tjoin(A, lo, mid, sep) sep tjoin(A, mid + 1, hi, sep)
}

# Position after the """ or triple-single-quote that closes the open multi-line string, or 0 (also
# after an invalid escape sequence, which sets err).
function ml_close(s, p,    c, e, q) {
  q = (ml == "mlbasic") ? "\"" : "\047"
  while (p <= length(s)) {
    c = substr(s, p, 1)
    if (q == "\"" && c == "\\") {
      e = esc_len(s, p, 1)
      if (!e) { esc_bad(s, p); bad(SERR); return 0 }
      p += e; continue
    }
    if (substr(s, p, 3) == q q q) {
      p += 3
      # Up to two more quotes belong to the content ("""a""""" is legal).
      for (e = 0; e < 2 && substr(s, p, 1) == q; e++) p++
      return p
    }
    p++
  }
  return 0
}

# Dotted key (bare or quoted parts) at p; sets KEND (after trailing blanks), KERR (2: bad string,
# SERR says why), and the parts KP[1..KPN].
function parse_key(s, p,    part, c, e) {
  KERR = 0; KPN = 0
  while (1) {
    p = skip_ws(s, p); c = substr(s, p, 1)
    if (c == "\"" || c == "\047") {
      e = str_end(s, p)
      if (!e) { KERR = 2; return "" }
      part = substr(s, p + 1, e - p - 1)
      if (c == "\"") part = unescape(part)
      p = e + 1
    } else {
      e = key_end(s, p)
      if (e < p) { KERR = 1; return "" }
      part = substr(s, p, e - p + 1); p = e + 1
    }
    KP[++KPN] = part
    p = skip_ws(s, p)
    if (substr(s, p, 1) == ".") { p++; continue }
    KEND = p
    return KPN == 1 ? KP[1] : KPN == 2 ? KP[1] "." KP[2] : tjoin(KP, 1, KPN, ".")
  }
}

# ---- What is defined where (a table or key may be defined only once) ----
# Every table and key is a node, numbered: 0 is the root table, NODE[nd, part] the child part of
# node nd. TY[node]: H table of a [header], I table created as the parent of a header, D table
# created by dotted keys, A array of tables ([[header]]), V any other value. AE[node] of an array of
# tables is the node of its current element; CUR is the node of the table of the current header.
# (Numbers rather than paths of all the parts: a path for every prefix of a key of thousands of
# dotted parts would be quadratic in time and memory.)

# The child part of node nd, made with type ty when there is none (then NEWN is 1).
function child(nd, part, ty) {
  NEWN = !((nd, part) in NODE)
  if (NEWN) { NODE[nd, part] = ++NID; TY[NID] = ty }
  return NODE[nd, part]
}

# Registers the key KP[1..KPN] (named name) in the table of node base.
function reg_key(base, name,    i, nd) {
  nd = base
  for (i = 1; i < KPN; i++) {
    nd = child(nd, KP[i], "D")
    if (TY[nd] != "D") return bad("duplicate key " name " (" key_prefix(i) " is already defined)")
  }
  child(nd, KP[KPN], "V")
  if (!NEWN) return bad("duplicate key " name)
  return 1
}

# The first parts KP[1..upto] of the key, as written in a message.
function key_prefix(upto) { return tjoin(KP, 1, upto, ".") }

# Registers the header [name] or [[name]] (parts KP[1..KPN]) and makes it the current table.
function reg_header(name, aot,    i, nd, t) {
  nd = 0
  for (i = 1; i < KPN; i++) {
    nd = child(nd, KP[i], "I")
    if (TY[nd] == "A") nd = AE[nd]
    else if (TY[nd] == "V") return bad("table " name ": " key_prefix(i) " is already defined as a value")
  }
  nd = child(nd, KP[KPN], "")
  t = TY[nd]
  if (aot) {
    if (t == "") TY[nd] = "A"
    else if (t != "A") return bad("array of tables [[" name "]] redefines " (t == "V" ? "a value" : "a table"))
    CUR = AE[nd] = ++NID
    return 1
  }
  if (t == "" || t == "I") { TY[nd] = "H"; CUR = nd; return 1 }
  if (t == "H") return bad("duplicate table [" name "]")
  if (t == "D") return bad("duplicate table [" name "] (already defined by dotted keys)")
  if (t == "A") return bad("table [" name "] redefines the array of tables [[" name "]]")
  return bad("table [" name "] redefines a value")
}

# ---- Values ----
function is_date(d,    y, m, n) {
  y = substr(d, 1, 4) + 0; m = substr(d, 6, 2) + 0; n = substr(d, 9, 2) + 0
  if (m < 1 || m > 12 || n < 1) return 0
  if (m == 2) return n <= ((y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28)
  return n <= ((m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31)
}

# HH:MM[:SS[.frac]] with an optional offset Z or +HH:MM / -HH:MM.
function is_time(t,    o) {
  if (substr(t, 1, 2) + 0 > 23 || substr(t, 4, 2) + 0 > 59) return 0
  if (substr(t, 6, 1) == ":" && substr(t, 7, 2) + 0 > 59) return 0
  if (t ~ /[+-][0-9][0-9]:[0-9][0-9]$/) {
    o = substr(t, length(t) - 4)
    if (substr(o, 1, 2) + 0 > 23 || substr(o, 4, 2) + 0 > 59) return 0
  }
  return 1
}

# Digits of a radix integer (no prefix) fit in a signed 64-bit integer.
function radix_fits(w, maxlen, maxfirst) {
  gsub(/_/, "", w); sub(/^0+/, "", w)
  return length(w) < maxlen || (length(w) == maxlen && substr(w, 1, 1) <= maxfirst)
}

function valid_bare(v,    w) {
  if (v == "true" || v == "false") return 1
  if (v ~ /^[+-]?(inf|nan)$/) return 1
  if (v ~ /^[+-]?(0|[1-9](_?[0-9])*)$/) {
    # A signed 64-bit integer.
    w = v; gsub(/_/, "", w); sub(/^\+/, "", w)
    if (substr(w, 1, 1) == "-") return radix_fits(substr(w, 2), 19, "9") && !(length(w) == 20 && substr(w, 2) > "9223372036854775808")
    return radix_fits(w, 19, "9") && !(length(w) == 19 && w > "9223372036854775807")
  }
  if (v ~ /^[+-]?(0|[1-9](_?[0-9])*)(\.[0-9](_?[0-9])*)?([eE][+-]?[0-9](_?[0-9])*)?$/) return 1
  if (v ~ /^0x[0-9A-Fa-f](_?[0-9A-Fa-f])*$/) return radix_fits(substr(v, 3), 16, "7")
  if (v ~ /^0o[0-7](_?[0-7])*$/) return radix_fits(substr(v, 3), 21, "7")
  if (v ~ /^0b[01](_?[01])*$/) return radix_fits(substr(v, 3), 63, "1")
  if (v ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]([Tt ][0-9][0-9]:[0-9][0-9](:[0-9][0-9](\.[0-9]+)?)?([Zz]|[+-][0-9][0-9]:[0-9][0-9])?)?$/)
    return is_date(v) && (length(v) == 10 || is_time(substr(v, 12)))
  if (v ~ /^[0-9][0-9]:[0-9][0-9](:[0-9][0-9](\.[0-9]+)?)?$/) return is_time(v)
  return 0
}

# Last position of the bare scalar at p (a local date and time may be separated by a space).
function scalar_end(s, p,    e) {
  e = bare_end(s, p)
  if (substr(s, p, e - p + 1) ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/ && substr(s, e + 1, 1) == " " && substr(s, e + 2, 1) ~ /[0-9]/)
    e = bare_end(s, e + 2)
  return e
}

# After a complete top-level value only blanks and a comment may follow.
function after_value(s, p,    c) {
  p = skip_ws(s, p)
  if (p > length(s) || substr(s, p, 1) == "#") return
  c = substr(s, p, 1)
  if (c == "]" || c == "}") bad("unbalanced brackets")
  else bad("unexpected text after value")
}

# Whether s[p..] reads as `key =` or the line as a table header: in an open array, the next line
# of the document (neither can be an array element).
function looks_kv(s, p) { parse_key(s, p); return !KERR && substr(s, KEND, 1) == "=" }
function looks_hdr(s, p) { return p == lws && s ~ /^[ \t]*\[\[?[ \t]*[A-Za-z_][A-Za-z0-9_. \t-]*\]\]?[ \t]*(#.*)?$/ }

# A value (scalar or bracket) just ended at the current depth: returns 1 when it was the top-level one.
function vdone() { if (!sd) return 1; st[sd] = "c"; return 0 }

# Closes the open array or inline table with c ("]" or "}").
function vclose(c) {
  if (sk[sd] != (c == "]" ? "[" : "{")) return bad("unbalanced brackets")
  sd--
  return 1
}

# Reads a value from p, also across lines: the open arrays and inline tables are sk[1..sd] ("[" or
# "{"; an array and a depth, not a string copied on each push: quadratic in the depth), with the
# state of each level in st[1..] (v: an element or "]"; c: a comma or the closing bracket; k: a key
# or "}"; V: a value is required), and ml is an open multi-line string. Returns the position after
# the top-level value once it is complete; 0 when the line ends with the value still open, or on an
# error (err is set).
function vscan(s, p,    c, d, t, e, top, key) {
  while (1) {
    if (ml != "") {
      e = ml_close(s, p)
      if (!e) return 0
      ml = ""; p = e
      if (vdone()) return p
      continue
    }
    p = skip_ws(s, p)
    d = sd; top = sk[d]; t = st[d]
    if (p > length(s) || substr(s, p, 1) == "#") {
      if (d == 0) return bad("missing value")
      if (t == "V") return bad("missing value in an inline table")
      return 0
    }
    c = substr(s, p, 1)
    if (top == "[" && ((c == "[" && looks_hdr(s, p)) || (index("[]{},", c) == 0 && looks_kv(s, p))))
      return bad("unbalanced brackets (the \"[\" opened at line " stk_open " is not closed)")
    if (t == "c") {
      if (c == ",") { st[d] = (top == "[") ? "v" : "k"; p++; continue }
      if (c == "]" || c == "}") { if (!vclose(c)) return 0; p++; if (vdone()) return p; continue }
      return bad(top == "[" ? "missing comma between array elements" : "missing comma between inline-table entries")
    }
    if (t == "k") {
      if (c == "}") { vclose(c); p++; if (vdone()) return p; continue }
      if (c == ",") return bad("empty entry in an inline table")
      if (c == "]") return bad("unbalanced brackets")
      key = parse_key(s, p)
      if (KERR == 2) return bad(SERR)
      if (KERR || substr(s, KEND, 1) != "=") return bad("expected key = value in an inline table")
      if (!reg_key(ipath[d], key)) return 0
      st[d] = "V"; p = KEND + 1; continue
    }
    # t is "V" (a value) or "v" (an array element or "]").
    if (c == "]" && t == "v") { vclose(c); p++; if (vdone()) return p; continue }
    if (c == "[" || c == "{") {
      if (d == 0) stk_open = NR
      sk[++sd] = c; st[sd] = (c == "[") ? "v" : "k"
      if (c == "{") ipath[sd] = ++NID
      p++; continue
    }
    if (c == "\"" || c == "\047") {
      if (substr(s, p, 3) == c c c) { ml = (c == "\"") ? "mlbasic" : "mlliteral"; ml_open = NR; p += 3; continue }
      e = str_end(s, p)
      if (!e) return bad(SERR)
      p = e + 1
      if (vdone()) return p
      continue
    }
    if (d > 0 && c == ",") return bad(top == "[" ? "empty array element" : "missing value in an inline table")
    if (d > 0 && c == "}" && top == "{") return bad("missing value in an inline table")
    if (d > 0 && (c == "]" || c == "}")) return bad("unbalanced brackets")
    e = scalar_end(s, p)
    if (e < p || !valid_bare(substr(s, p, e - p + 1))) return bad("invalid value")
    p = e + 1
    if (vdone()) return p
  }
}

# First value of a key/value line, at p. Sets VK (kind), VS/VE (span), VD (decoded scalar).
function value_start(s, p,    c, e) {
  VS = p; VE = 0; VD = ""; VK = ""
  if (p > length(s) || substr(s, p, 1) == "#") return bad("missing value")
  c = substr(s, p, 1)
  if (c == "\"" || c == "\047") {
    if (substr(s, p, 3) == c c c) VK = (c == "\"") ? "mlbasic" : "mlliteral"
    else VK = (c == "\"") ? "basic" : "literal"
  } else if (c == "[") VK = "array"
  else if (c == "{") VK = "inline"
  else VK = "bare"
  sd = 0; st[0] = "V"
  # A one-line string or a bare scalar: what vscan does for them at the top level, without its loop.
  if (VK == "basic" || VK == "literal") { e = str_end(s, p); if (!e) return bad(SERR); e++ }
  else if (VK == "bare") {
    e = scalar_end(s, p)
    if (e < p || !valid_bare(substr(s, p, e - p + 1))) return bad("invalid value")
    e++
  } else e = vscan(s, p)
  if (err != "" || !e) return 0
  VE = e - 1
  if (VK == "basic" || VK == "literal") {
    VD = substr(s, p + 1, e - p - 2)
    if (VK == "basic") VD = unescape(VD)
  } else if (VK == "bare") VD = substr(s, p, e - p)
  after_value(s, e); return 0
}

# End position of the value at p inside a one-line inline table (string, bracketed or bare).
function inline_value_end(s, p,    c, d, e) {
  c = substr(s, p, 1)
  if (c == "\"" || c == "\047") return str_end(s, p)
  if (c == "[" || c == "{") {
    d = 0
    while (p <= length(s)) {
      c = substr(s, p, 1)
      if (c == "\"" || c == "\047") { e = str_end(s, p); if (!e) return 0; p = e + 1; continue }
      if (c == "[" || c == "{") d++
      if (c == "]" || c == "}") { d--; if (d == 0) return p }
      p++
    }
    return 0
  }
  return scalar_end(s, p)
}

# Look for the flag key at the top level of the one-line inline table s[a..b] ("{" … "}").
# Sets INS/INE/INV (span and text of its value); returns 1 when found.
function inline_find(s, a, b,    p, k, e) {
  p = a + 1
  while (p < b) {
    p = skip_ws(s, p)
    if (p >= b) return 0
    if (substr(s, p, 1) == ",") { p++; continue }
    k = parse_key(s, p)
    if (KERR || substr(s, KEND, 1) != "=") return 0
    p = skip_ws(s, KEND + 1)
    e = inline_value_end(s, p)
    if (!e) return 0
    if (k == FF) { INS = p; INE = e; INV = substr(s, p, e - p + 1); return 1 }
    p = e + 1
  }
  return 0
}

function header(s, p,    aot, name, q, closer, ind) {
  ind = substr(s, 1, p - 1)
  aot = (substr(s, p, 2) == "[[")
  name = parse_key(s, p + (aot ? 2 : 1))
  if (KERR == 2) return bad(SERR)
  closer = aot ? "]]" : "]"
  if (KERR || substr(s, KEND, length(closer)) != closer) return bad("bad table header")
  q = skip_ws(s, KEND + length(closer))
  if (q <= length(s) && substr(s, q, 1) != "#") return bad("bad table header")
  if (!reg_header(name, aot)) return 0
  if (aot && name == "runners") {
    R++; inr = 1; blk = "main"; rhdr[R] = NR; last[R] = NR; rnode[R] = CUR
    return 0
  }
  if (inr && substr(name, 1, 8) == "runners.") {
    if (!(R in subind)) subind[R] = ind
    last[R] = NR
    if (!aot && name == "runners.feature_flags") {
      if (R in ffhdr) return bad("duplicate table [runners.feature_flags]")
      if ((R in ffinl) || (R in ffdot)) return bad("feature_flags is defined twice")
      ffhdr[R] = NR; ffhind[R] = ind; blk = "ff"
    } else blk = "sub"
    return 0
  }
  # A [runners.x] after another top-level table still belongs to the last [[runners]] in TOML.
  if (R && substr(name, 1, 8) == "runners.") orphan[R] = NR
  inr = 0; blk = "other"
  return 0
}

function keyval(s, p,    key) {
  key = parse_key(s, p)
  if (KERR == 2) return bad(SERR)
  if (KERR || substr(s, KEND, 1) != "=") return bad("expected a table header or key = value")
  if (!reg_key(CUR, key)) return 0
  kvline = NR; kvkey = key; kvblk = blk; kvind = substr(s, 1, p - 1); kvr = inr ? R : 0
  value_start(s, skip_ws(s, KEND + 1))
  if (err == "" && ml == "" && !sd) record_kv(NR, 0)
  return 0
}

# Remember what the selection and the edit need about a key of a runner.
function record_kv(endline, multi) {
  if (!kvr) return
  last[kvr] = endline
  if (multi) VK = "multiline " VK
  if (kvblk == "main") {
    if (!(kvr in mind)) mind[kvr] = kvind
    if (kvkey == "url") { if (VK == "basic" || VK == "literal") rurl[kvr] = VD; urll[kvr] = kvline }
    else if (kvkey == "id") {
      hasid[kvr] = 1; idl[kvr] = kvline; idS[kvr] = VS; idE[kvr] = VE; idK[kvr] = VK
      if ((VK == "bare" || VK == "basic" || VK == "literal") && VD ~ /^\+?[0-9]+$/) {
        rid[kvr] = VD; sub(/^\+?0*/, "", rid[kvr])
      }
    }
    else if (kvkey == "token") { tokl[kvr] = kvline; tokS[kvr] = VS; tokE[kvr] = VE; tokK[kvr] = VK; tokV[kvr] = VD }
    else if (kvkey == "token_obtained_at") { obtl[kvr] = kvline; obtS[kvr] = VS; obtE[kvr] = VE; obtK[kvr] = VK }
    else if (kvkey == "token_expires_at") { expl[kvr] = kvline; expS[kvr] = VS; expE[kvr] = VE; expK[kvr] = VK; expV[kvr] = VD }
    else if (kvkey == "feature_flags") {
      if (kvr in ffdot) return bad_at(kvline, "feature_flags is defined twice")
      ffinl[kvr] = kvline; ffinS[kvr] = VS; ffinE[kvr] = VE; ffinK[kvr] = VK
      if (VK == "inline" && inline_find(C[kvline], VS, VE)) {
        flagl[kvr] = kvline; flagS[kvr] = INS; flagE[kvr] = INE; flagV[kvr] = INV
        flagK[kvr] = (INV ~ /^["\047]/) ? "string" : "bare"
      }
    }
    else if (substr(kvkey, 1, 14) == "feature_flags.") {
      if (kvr in ffinl) return bad_at(kvline, "feature_flags is defined twice")
      ffdot[kvr] = endline
      if (kvkey == "feature_flags." FF) { flagl[kvr] = kvline; flagS[kvr] = VS; flagE[kvr] = VE; flagK[kvr] = VK; flagV[kvr] = VD }
    }
  } else if (kvblk == "ff") {
    fflast[kvr] = endline; ffkind[kvr] = kvind
    if (kvkey == FF) { flagl[kvr] = kvline; flagS[kvr] = VS; flagE[kvr] = VE; flagK[kvr] = VK; flagV[kvr] = VD }
  }
  return 0
}

function norm_url(u) { sub(/\/+$/, "", u); return u }

# Replace s[a..b] of line ln (CR already stripped) with text.
function edit(ln, a, b, text,    s) {
  if (ln in NEWC) { fail(1, "internal error: two edits on one line"); return }
  s = C[ln]; NEWC[ln] = substr(s, 1, a - 1) text substr(s, b + 1)
}
function insert_after(ln, text) { INSN[ln]++; INST[ln, INSN[ln]] = text }
# put TEXT LN — appends an output line: LN > 0 original line LN, -LN its copy, 0 a new line. An
# unterminated last line gets the line break of the file before the lines that follow it.
function put(text, ln,    i) {
  i = ln < 0 ? -ln : ln
  OT[++K] = text; OO[K] = ln
  OC[K] = !i ? eol : CRF[i] ? "\r" : (i == n && !finalnl) ? eol : ""
}
# The header lines of the matches M[1..nm], as "3, 17, 40" (joined by tjoin: there may be thousands).
function match_lines(    i) { for (i = 1; i <= nm; i++) ML[i] = rhdr[M[i]]; return tjoin(ML, 1, nm, ", ") }
function pick(id,    i, r) {
  nm = 0
  for (i = 1; i <= nu; i++) { r = U[i]; if ((r in rid) && rid[r] == id) M[++nm] = r }
  lines = match_lines()
  return nm
}
function styled(kind, v) { return kind == "basic" ? "\"" v "\"" : kind == "literal" ? "\047" v "\047" : v }

# ---- The proof of a local edit (see the top of the program) ----
# expect_kv TEXT KEY KIND VALUE — the edited or inserted line TEXT must read, on its own, as KEY = a
# value of KIND (basic, literal, bare; "inline": an inline table whose flag is true) decoding to VALUE.
# KEY FF: the flag, in the flags table or as a dotted key.
function expect_kv(text, key, kind, value) { NX++; XT[NX] = text; XK[NX] = key; XKIND[NX] = kind; XV[NX] = value }
function check_kv(s, key, kind, value,    k) {
  if (s ~ CTL) return 0
  k = parse_key(s, skip_ws(s, 1))
  if (key == FF && k == "feature_flags." FF) k = FF
  if (KERR || k != key || substr(s, KEND, 1) != "=") return 0
  value_start(s, skip_ws(s, KEND + 1))
  if (err != "" || ml != "" || sd) return 0
  if (kind == "inline") return VK == "inline" && inline_find(s, VS, VE) && INV == "true"
  return VK == kind && VD == value
}

# ---- Instants (--unless-newer) ----
# Days from 1970-01-01 to the proleptic Gregorian date y-m-d (days_from_civil of H. Hinnant; the
# year is moved on by 400 years, exactly 146097 days, so that int() never sees a negative number).
function days_from_civil(y, m, d,    era, yoe, doy, doe) {
  y += 400 - (m <= 2)
  era = int(y / 400); yoe = y - era * 400
  doy = int((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1
  doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
  return era * 146097 + doe - 719468 - 146097
}
# Reads the offset date-time v (a TOML one: T, t or a space between date and time, Z, z or an
# offset): DT_S its seconds since the epoch (whole, UTC), DT_F its fraction of a second as digits
# without trailing zeros (so that a plain string comparison orders fractions). 0 when v is not one,
# or holds year 0001, "unknown" for gitlab-runner (the zero time.Time).
function dt_parse(v,    o, f) {
  if (length(v) < 20 || substr(v, 17, 1) != ":" || v !~ /([Zz]|:[0-9][0-9])$/ || !valid_bare(v) || substr(v, 1, 4) == "0001") return 0
  o = substr(v, length(v) - 5)
  o = (o ~ /^[+-]/) ? (substr(o, 1, 3) * 60 + (substr(o, 1, 1) substr(o, 5))) * 60 : 0
  f = (substr(v, 20, 1) == ".") ? substr(v, 21) : ""
  sub(/[^0-9].*$/, "", f); sub(/0+$/, "", f); DT_F = f
  DT_S = days_from_civil(substr(v, 1, 4) + 0, substr(v, 6, 2) + 0, substr(v, 9, 2) + 0) * 86400 + substr(v, 12, 2) * 3600 + substr(v, 15, 2) * 60 + substr(v, 18, 2) - o
  return 1
}
# Whether the instant v is strictly later than the instant of --expires-at (URT_EXPIRES, in UTC with
# whole seconds, and the digits of its fraction of a second, URT_EXPIRES_FRAC). Never when either is
# not an offset date-time or is unknown.
function later_than_expiry(v,    s, f) {
  if (!dt_parse(v)) return 0
  s = DT_S; f = DT_F
  if (!dt_parse(ENVIRON["URT_EXPIRES"])) return 0
  DT_F = ENVIRON["URT_EXPIRES_FRAC"]; sub(/0+$/, "", DT_F)
  return s > DT_S || (s == DT_S && ("x" f) > ("x" DT_F))
}

BEGIN {
  FF = "FF_DISABLE_AUTOMATIC_TOKEN_ROTATION"
  BOM = sprintf("%c%c%c", 239, 187, 191)
  CTL = "[" sprintf("%c", 1) "-" sprintf("%c", 8) sprintf("%c", 11) "-" sprintf("%c", 31) sprintf("%c", 127) "]"
  err = ""; R = 0; inr = 0; blk = "other"; ml = ""; sd = 0; sk[0] = ""; CUR = 0; NID = 0; ncr = 0; nbytes = 0; NX = 0; nonlocal = 0
  out = ENVIRON["URT_OUT"]; want_url = norm_url(ENVIRON["URT_URL"]); want_id = ENVIRON["URT_ID"]
  tokfile = ENVIRON["URT_TOKEN_FILE"]; prevfile = ENVIRON["URT_PREV_FILE"]
  mode = ENVIRON["URT_MODE"]; if (mode == "") mode = "update"
  if (mode == "remove") tokfile = ""
  if (tokfile != "" && ((getline newtok < tokfile) <= 0 || newtok == "")) { fail(1, "internal error: cannot read the token file"); exit }
  if (tokfile != "") close(tokfile)
  haveprev = 0
  if (prevfile != "") {
    if ((getline prevtok < prevfile) <= 0 || prevtok == "") { fail(1, "internal error: cannot read the previous token file"); exit }
    close(prevfile); haveprev = 1
  }
}

{
  s = $0; nbytes += length(s) + 1
  if (NR == 1 && substr(s, 1, 3) == BOM) { bom = BOM; s = substr(s, 4) }
  cr = (substr(s, length(s), 1) == "\r")
  if (cr) s = substr(s, 1, length(s) - 1)
  C[NR] = s; CRF[NR] = cr; ncr += cr
  if (s ~ CTL) { bad("control character"); exit }
  # Where the line starts (looks_hdr: once per line, not once per "[" of a long array).
  lws = skip_ws(s, 1)
  if (ml != "" || sd) {
    e = vscan(s, 1)
    if (err == "" && ml == "" && !sd) { after_value(s, e); if (err == "") record_kv(NR, 1) }
    if (err != "") exit
    next
  }
  p = lws
  if (p > length(s) || substr(s, p, 1) == "#") { PLAIN[NR] = 1; next }
  if (substr(s, p, 1) == "[") header(s, p)
  else keyval(s, p)
  if (err != "") exit
}

END {
  n = NR
  if (err == "" && ml != "") bad_at(ml_open, "unterminated multi-line string")
  if (err == "" && sd) bad_at(stk_open, "unbalanced brackets (the \"" sk[1] "\" is never closed)")
  if (err != "") {
    # One line whatever a quoted key held.
    gsub(/[\001-\037\177]/, "?", err)
    if (errcode == 4) print "err 4 malformed TOML at line " errline ": " err
    else print "err " errcode " " err
    exit 0
  }

  # Selection: url first, then id; where no table of that url has an id, the previous token.
  # add and remove select by id only. add: the table of the new id when there is one (then updated
  # as in update mode), else a copy of the table of URT_FROM. remove: no such table is current.
  nu = 0; anyid = 0; copy = 0
  for (r = 1; r <= R; r++) if ((r in rurl) && norm_url(rurl[r]) == want_url) { U[++nu] = r; if (r in hasid) anyid = 1 }
  if (mode != "update") {
    if (nu && !anyid) { print "err 5 no [[runners]] table with url " want_url " has an id; --mode " mode " selects by id"; exit 0 }
    if (!pick(want_id)) {
      if (mode == "remove") { print "ok current"; exit 0 }
      copy = 1
      if (!pick(ENVIRON["URT_FROM"])) { print "err 5 no [[runners]] table has url " want_url " and id " ENVIRON["URT_FROM"] " (the runner to copy)"; exit 0 }
    }
    if (nm > 1) { print "err 6 " nm " [[runners]] tables have url " want_url " and id " (copy ? ENVIRON["URT_FROM"] : want_id) " (lines " lines ")"; exit 0 }
    T = M[1]
    if (T in orphan) { print "err 4 malformed TOML at line " orphan[T] ": a [runners.*] table of the selected runner follows another table; --mode " mode " will not edit it"; exit 0 }
  } else {
    if (nu == 0) { print "err 5 no [[runners]] table has url " want_url; exit 0 }
    nm = 0
    for (i = 1; i <= nu; i++) {
      r = U[i]
      if (anyid) { if ((r in rid) && rid[r] == want_id) M[++nm] = r }
      else if (haveprev && (r in tokV) && (tokV[r] == prevtok || tokV[r] == newtok)) M[++nm] = r
    }
    lines = match_lines()
    if (!anyid && !haveprev) { print "err 5 no [[runners]] table with url " want_url " has an id; --previous-token-file is needed to select one"; exit 0 }
    if (nm == 0) {
      if (anyid) print "err 5 no [[runners]] table has url " want_url " and id " want_id
      else print "err 5 no [[runners]] table with url " want_url " holds the previous token"
      exit 0
    }
    if (nm > 1) {
      if (anyid) print "err 6 " nm " [[runners]] tables have url " want_url " and id " want_id " (lines " lines ")"
      else print "err 6 " nm " [[runners]] tables with url " want_url " hold the previous or new token (lines " lines ")"
      exit 0
    }
    T = M[1]
    # --unless-newer (a converge that may race a rotation): a table whose token expires later than
    # this one, and is another token, keeps it.
    if (ENVIRON["URT_UNLESS_NEWER"] == "1" && (T in expl) && !((T in tokV) && tokV[T] == newtok) && later_than_expiry(expV[T])) {
      print "ok kept-newer"; exit 0
    }
  }

  eol = (ncr * 2 > n) ? "\r" : ""
  ind = (T in mind) ? mind[T] : "  "
  subi = (T in subind) ? subind[T] : ind

  if (mode == "remove") {
    # The table, its sub-tables and the comment lines right above its header; comments after its
    # last key lead into the next table and stay. One run of blank lines goes too (the one before
    # it when a blank line or the end of the file follows it; at the start of the file, the one
    # after it), so no double gap is left behind.
    a = rhdr[T]; z = last[T]
    while (a > 1 && PLAIN[a - 1] && C[a - 1] !~ /^[ \t]*$/) a--
    if (a == 1) { while (z < n && PLAIN[z + 1] && C[z + 1] ~ /^[ \t]*$/) z++ }
    else if (z == n || (PLAIN[z + 1] && C[z + 1] ~ /^[ \t]*$/)) { while (a > 1 && PLAIN[a - 1] && C[a - 1] ~ /^[ \t]*$/) a-- }
    for (i = a; i <= z; i++) DEL[i] = 1
  } else {
    # Token. Tn: the node of the table of the runner, to see whether a key or table is defined in it.
    tokchanged = copy; Tn = rnode[T]
    if (!(T in tokl)) {
      text = ind "token = \"" newtok "\""
      insert_after((T in idl) ? idl[T] : (T in urll) ? urll[T] : rhdr[T], text)
      tokchanged = 1
      if ((Tn, "token") in NODE) nonlocal = 1
      else expect_kv(text, "token", "basic", newtok)
    } else if (tokK[T] != "basic" && tokK[T] != "literal") {
      print "err 4 malformed TOML at line " tokl[T] ": the token of the selected runner is not a one-line string"; exit 0
    } else if (tokV[T] != newtok) {
      edit(tokl[T], tokS[T], tokE[T], styled(tokK[T], newtok)); tokchanged = 1
      expect_kv(NEWC[tokl[T]], "token", tokK[T], newtok)
    }

    # Flag
    flagok = (T in flagl) && flagK[T] == "bare" && flagV[T] == "true"
    if (!flagok) {
      ffn = ((Tn, "feature_flags") in NODE) ? NODE[Tn, "feature_flags"] : -1
      if (T in flagl) {
        if (flagK[T] ~ /^multiline/) { print "err 4 malformed TOML at line " flagl[T] ": " FF " has a multi-line value"; exit 0 }
        edit(flagl[T], flagS[T], flagE[T], "true")
        j = (T in ffinl) && flagl[T] == ffinl[T]
        expect_kv(NEWC[flagl[T]], j ? "feature_flags" : FF, j ? "inline" : "bare", "true")
      } else if (T in ffhdr) {
        text = ((T in ffkind) ? ffkind[T] : ffhind[T] "  ") FF " = true"
        insert_after((T in fflast) ? fflast[T] : ffhdr[T], text)
        if ((ffn, FF) in NODE) nonlocal = 1
        else expect_kv(text, FF, "bare", "true")
      } else if (T in ffinl) {
        if (ffinK[T] != "inline") { print "err 4 malformed TOML at line " ffinl[T] ": feature_flags of the selected runner is not a one-line inline table"; exit 0 }
        # Appended as the last key of the inline table (not a local edit: read back).
        s = C[ffinl[T]]; a = ffinS[T]; b = ffinE[T]; j = b - 1
        while (j > a && (substr(s, j, 1) == " " || substr(s, j, 1) == "\t")) j--
        if (j == a) edit(ffinl[T], a, b, "{ " FF " = true }")
        else if (substr(s, j, 1) == ",") edit(ffinl[T], j + 1, j, " " FF " = true")
        else edit(ffinl[T], j + 1, j, ", " FF " = true")
        nonlocal = 1
      } else if (T in ffdot) {
        text = ind "feature_flags." FF " = true"
        insert_after(ffdot[T], text)
        if ((ffn, FF) in NODE) nonlocal = 1
        else expect_kv(text, FF, "bare", "true")
      } else {
        insert_after(last[T], subi "[runners.feature_flags]")
        insert_after(last[T], subi "  " FF " = true")
        # A header of this shape is local only where the runner has no feature_flags at all (not even
        # as the parent of a [runners.feature_flags.x] table, or a table after another table).
        if (ffn != -1) nonlocal = 1
        else expect_kv(subi "  " FF " = true", FF, "bare", "true")
      }
    }
    if (err != "") { print "err " errcode " " err; exit 0 }
    if (!tokchanged && flagok) { print "ok current"; exit 0 }

    # Timestamps: obtained only when the token really changes; expiry whenever one is given. A copy
    # without --expires-at gets the zero time of gitlab-runner (unknown), never the expiry of the old one.
    if (copy) edit(idl[T], idS[T], idE[T], styled(idK[T], want_id))
    expv = ENVIRON["URT_EXPIRES"]
    if (copy && expv == "") expv = "0001-01-01T00:00:00Z"
    if (tokchanged && (T in obtl) && (obtK[T] == "bare" || obtK[T] == "basic" || obtK[T] == "literal")) {
      edit(obtl[T], obtS[T], obtE[T], styled(obtK[T], ENVIRON["URT_NOW"]))
      expect_kv(NEWC[obtl[T]], "token_obtained_at", obtK[T], ENVIRON["URT_NOW"])
    }
    if (expv != "" && (T in expl) && (expK[T] == "bare" || expK[T] == "basic" || expK[T] == "literal")) {
      edit(expl[T], expS[T], expE[T], styled(expK[T], expv))
      expect_kv(NEWC[expl[T]], "token_expires_at", expK[T], expv)
    }
    if (err != "") { print "err " errcode " " err; exit 0 }
  }
  # add and remove move whole sections: read back.
  if (copy || mode == "remove") nonlocal = 1

  verb = copy ? "add" : (mode == "remove") ? "remove" : "change"
  if (out == "") { print "ok " verb; exit 0 }
  # The proof of a local edit, before anything is written.
  for (i = 1; i <= NX && !nonlocal; i++)
    if (!check_kv(XT[i], XK[i], XKIND[i], XV[i])) { print "err 7 the new file did not verify; nothing was replaced"; exit 0 }
  # Whether the input ended with a line break (awk cannot tell): its bytes against the size of the file.
  size = ENVIRON["URT_SIZE"] + 0
  if (n == 0) finalnl = 0
  else if (nbytes == size) finalnl = 1
  else if (nbytes == size + 1) finalnl = 0
  else { print "err 7 the config file changed while it was read; nothing was written"; exit 0 }
  # The lines of the new file, each with its CR (or that of the file) in OC; the copy of an added runner
  # follows the last line of the old one, after one blank line.
  K = 0
  for (i = 1; i <= n; i++) {
    if (i in DEL) continue
    put(copy ? C[i] : (i in NEWC) ? NEWC[i] : C[i], i)
    if (!copy) { for (k = 1; k <= INSN[i]; k++) put(INST[i, k], 0) }
    else if (i == last[T]) {
      put("", 0)
      for (j = rhdr[T]; j <= last[T]; j++) {
        put((j in NEWC) ? NEWC[j] : C[j], -j)
        for (k = 1; k <= INSN[j]; k++) put(INST[j, k], 0)
      }
    }
  }
  # The backup: the bytes that were read, as they were.
  bak = ENVIRON["URT_BAK"]
  if (bak != "") {
    print "writing backup"; fflush()
    printf "%s", "" > bak
    for (i = 1; i <= n; i++) printf "%s", (i == 1 ? bom : "") C[i] (CRF[i] ? "\r" : "") ((i < n || finalnl) ? "\n" : "") > bak
    if (close(bak) != 0) { print "err 7 writing the backup copy failed"; exit 0 }
  }
  print "writing new"; fflush()
  # Opens the output even when no line is left (the file then holds at most the BOM).
  chunk = K ? "" : bom
  printf "%s", chunk > out; total = length(chunk)
  for (k = 1; k <= K; k++) {
    # The last line keeps a missing final newline (a bare CR stays only on the original last line).
    chunk = (k == 1 ? bom : "") OT[k] ((k < K || finalnl) ? OC[k] "\n" : (OO[k] == n && CRF[n]) ? "\r" : "")
    printf "%s", chunk > out; total += length(chunk)
  }
  if (close(out) != 0) { print "err 7 writing the new file failed"; exit 0 }
  print "ok " verb " " total " " (nonlocal ? "readback" : "local")
}
'

# run_walker [OUT BAK SIZE] — runs the walker on its stdin (the config, or the new file to read back:
# an awk operand holding "=" would be taken as an assignment) and prints its verdict lines; fails if
# awk itself failed. OUT and BAK: where it writes the new file and the backup, SIZE: the input's size.
run_walker() {
  URT_OUT=${1:-} URT_BAK=${2:-} URT_SIZE=${3:-} URT_MODE=$MODE URT_FROM=$FROM_ID URT_URL=$URL URT_ID=$RUNNER_ID \
    URT_TOKEN_FILE=$TOKEN_FILE URT_PREV_FILE=$PREV_TOKEN_FILE URT_NOW=$NOW URT_EXPIRES=$EXPIRES_AT \
    URT_EXPIRES_FRAC=$EXPIRES_FRAC URT_UNLESS_NEWER=$UNLESS_NEWER \
    awk "$AWK_PROG" 2>/dev/null
}

# verdict_or_die VERDICT WHERE — turns an "err CODE MESSAGE" verdict into the one error line.
verdict_or_die() {
  local verdict=$1 where=$2 code msg
  case $verdict in
    "ok "*) return 0 ;;
    "err "*)
      code=${verdict#err }
      code=${code%% *}
      msg=${verdict#err "$code" }
      die "$code" "$msg" "$where"
      ;;
    *) die "$E_INTERNAL" "internal error: the TOML walker gave no verdict" "$where" ;;
  esac
}

# ---------------------------------------------------------------------------------------------------
# Reload
# ---------------------------------------------------------------------------------------------------
# reload_runner — prints the reload= word; a failure is a warning, never an error: gitlab-runner
# re-reads config.toml by itself within 3 s of an mtime change.
reload_runner() {
  local systemctl=${UPDATE_RUNNER_TOKEN_SYSTEMCTL:-systemctl} pkill=${UPDATE_RUNNER_TOKEN_PKILL:-pkill} rc=0
  case $RELOAD in
    none)
      echo none
      ;;
    restart)
      # Aborts running jobs unless the unit stops gitlab-runner with SIGQUIT (KillSignal=SIGQUIT).
      if "$systemctl" restart gitlab-runner >/dev/null 2>&1; then
        echo restart
      else
        warn "systemctl restart gitlab-runner failed; gitlab-runner reloads the changed file within 3 s if it is running" "$CONFIG"
        echo failed
      fi
      ;;
    sighup)
      # SIGHUP makes gitlab-runner reload config.toml at once without interrupting jobs.
      if "$systemctl" is-active --quiet gitlab-runner >/dev/null 2>&1; then
        # --kill-who=main: the default ("all") would also signal every job process in the unit's
        # cgroup (shell executor), and SIGHUP ends a shell. systemd >= 252 calls the option
        # --kill-whom; getopt still accepts --kill-who there as its unambiguous prefix.
        if "$systemctl" kill --kill-who=main --signal=SIGHUP gitlab-runner >/dev/null 2>&1; then
          echo sighup
        else
          warn "systemctl kill --signal=SIGHUP gitlab-runner failed; gitlab-runner reloads the changed file within 3 s" "$CONFIG"
          echo failed
        fi
      else
        # No systemd unit running (container, manual start): signal the process by exact name.
        "$pkill" -HUP -x gitlab-runner >/dev/null 2>&1 || rc=$?
        case $rc in
          0) echo sighup ;;
          # pkill: 1 = no process matched. Not an error: the service reads the new file when it starts.
          1) echo not-running ;;
          *)
            warn "pkill -HUP -x gitlab-runner failed (exit $rc); gitlab-runner reloads the changed file within 3 s if it is running" "$CONFIG"
            echo failed
            ;;
        esac
      fi
      ;;
  esac
}

# The runner's system_id (gitlab-runner keeps it next to config.toml), so reports can tell hosts apart.
# Only what has a system_id's shape is printed (gitlab-runner common/system_id.go: `s_` and 12 hex
# digits from the machine id, or `r_` and 12 random letters and digits), and never through a link: a
# `.runner_system_id` that points elsewhere would put the first line of any file root can read in the
# command output.
# report STATUS RELOAD — the one line on stdout: the status, the runner, the config and its system_id.
report() {
  local dir=. file sid=""
  # dirname without a program: a config path is never a folder, so it never ends with a slash.
  if [[ $CONFIG == */* ]]; then dir=${CONFIG%/*} && dir=${dir:-/}; fi
  file=$dir/.runner_system_id
  if [[ -f $file && ! -L $file && -r $file ]]; then
    IFS= read -r -n 64 sid <"$file" || true
    sid=${sid//[[:space:]]/}
  fi
  if [[ ! $sid =~ ^(s_[0-9a-f]{12}|r_[A-Za-z0-9]{12})$ ]]; then sid=""; fi
  printf 'status=%s runner_id=%s config=%s system_id=%s reload=%s\n' "$1" "$RUNNER_ID" "$CONFIG" "$sid" "$2"
}

# take_lock DIR — holds an exclusive flock(2) on the config file's folder from the first read of the file
# to its rename, so two updates of runners that share one config.toml never interleave (DESIGN.md
# invariant 8): the second waits, then reads the file the first one wrote. The folder itself is locked,
# so nothing is created for the lock and no link can stand in for it. The wait is bounded
# (UPDATE_RUNNER_TOKEN_LOCK_WAIT seconds, default 60: SSM gives the whole command 120 s).
take_lock() {
  local dir=$1 wait=${UPDATE_RUNNER_TOKEN_LOCK_WAIT:-60}
  if [[ ! $wait =~ ^[0-9]{1,4}$ ]]; then die "$E_USAGE" "UPDATE_RUNNER_TOKEN_LOCK_WAIT must be a whole number of seconds" "environment"; fi
  command -v flock >/dev/null 2>&1 || die "$E_INTERNAL" "flock (util-linux) is missing: two updates of one config file could interleave" "$dir"
  exec {LOCK_FD}<"$dir" || die "$E_CONFIG" "cannot open the config directory to lock it" "$dir"
  flock -w "$wait" "$LOCK_FD" ||
    die "$E_WRITE" "another update of this config file held its lock for ${wait} s; nothing was written" "$dir"
}

# resolve_target — sets TARGET (the file to edit: a symlinked config is followed, so the link itself
# survives the rename; every link on the way is resolved once, so one swapped later changes nothing),
# its folder DIR and its name BASE.
TARGET="" DIR="" BASE=""
resolve_target() {
  TARGET=$(readlink -f -- "$CONFIG") || die "$E_CONFIG" "cannot resolve the config path" "$CONFIG"
  DIR=${TARGET%/*} BASE=${TARGET##*/}
  DIR=${DIR:-/}
}

# inspect_folder — one stat of the folder and of the open config file (descriptor CFG_FD, so the size
# is that of the bytes the walker reads). Sets FOLDER_OWNER, FILE_OWNER/FILE_GROUP (numeric ids),
# FILE_MODE, FILE_SIZE, and WRITE_ERR ("MESSAGE|WHERE" of an exit 7, empty when this update may write): the
# file and folder must be writable, and the folder writable by nobody but root and the file's owner,
# who could otherwise swap the temporary or backup file for a link while this update runs.
FOLDER_OWNER="" FOLDER_MODE="" FILE_OWNER="" FILE_GROUP="" FILE_MODE="" FILE_SIZE="" WRITE_ERR=""
inspect_folder() {
  local lines=() re='^([0-9]+) ([0-9]+) ([0-7]+) ([0-9]+)$'
  mapfile -t lines < <(stat -L -c '%u %g %a %s' -- "$DIR" "/dev/fd/$CFG_FD" 2>/dev/null)
  if [[ ${lines[0]:-} =~ $re ]]; then FOLDER_OWNER=${BASH_REMATCH[1]} FOLDER_MODE=${BASH_REMATCH[3]}; fi
  if [[ ${lines[1]:-} =~ $re ]]; then
    FILE_OWNER=${BASH_REMATCH[1]} FILE_GROUP=${BASH_REMATCH[2]} FILE_MODE=${BASH_REMATCH[3]} FILE_SIZE=${BASH_REMATCH[4]}
  fi
  if [[ ! -w $TARGET ]]; then WRITE_ERR="config file is not writable|$CONFIG"
  elif [[ ! -w $DIR || ! -x $DIR ]]; then WRITE_ERR="config directory is not writable|$DIR"
  elif [[ -z $FOLDER_MODE || -z $FILE_SIZE ]]; then WRITE_ERR="cannot stat the config file or its folder|$CONFIG"
  elif (((8#$FOLDER_MODE & 8#022) != 0)); then
    WRITE_ERR="config directory is writable by its group or by others (mode $FOLDER_MODE): another user could swap the files this update writes; make it writable by its owner only|$DIR"
  elif [[ $FOLDER_OWNER != 0 && $FOLDER_OWNER != "$FILE_OWNER" ]]; then
    WRITE_ERR="config directory belongs to uid $FOLDER_OWNER, neither root nor the owner of the config file (uid $FILE_OWNER)|$DIR"
  elif ((EUID == 0)) && [[ $FOLDER_OWNER != 0 ]] && ! command -v setpriv >/dev/null 2>&1; then
    WRITE_ERR="the config directory belongs to uid $FOLDER_OWNER and setpriv (util-linux) is missing to write there as that user|$DIR"
  fi
}

# install_as_owner DIR BASE TARGET MODE — as root in a folder that belongs to the config file's owner
# (user-mode gitlab-runner): that owner may rename anything in the folder while we run, so every file
# there is created, written and renamed as that owner (setpriv), reading the new file on stdin and the
# backup on descriptor 3 (opened by root in its private folder). A link the owner plants then only leads
# where the owner may write anyway.
install_as_owner() {
  local dir=$1 base=$2 target=$3 mode=$4
  # shellcheck disable=SC2016 # the script runs in the child's bash, with its own $1…$4
  setpriv --reuid="$FILE_OWNER" --regid="$FILE_GROUP" --clear-groups -- bash -c '
    set -eu
    umask 077
    dir=$1 base=$2 target=$3 mode=$4
    bak=$(mktemp -- "$dir/.$base.bak.XXXXXX")
    new=$(mktemp -- "$dir/.$base.new.XXXXXX")
    trap '"'"'rm -f -- "$bak" "$new"'"'"' EXIT
    cat <&3 >"$bak"
    cat >"$new"
    chmod "$mode" -- "$new"
    chmod 0600 -- "$bak"
    sync -- "$new" "$bak"
    mv -f -T -- "$bak" "$target.bak"
    mv -f -T -- "$new" "$target"
    trap - EXIT
  ' _ "$dir" "$base" "$target" "$mode" <"$TMP_NEW" 3<"$TMP_BAK" 2>/dev/null ||
    die "$E_WRITE" "writing the new file as its owner (uid $FILE_OWNER) failed; nothing was replaced" "$CONFIG"
}

# walk_failed OUTPUT — an awk that died: which write it had announced (ulimit -f, a full disk).
walk_failed() {
  case ${1##*$'\n'} in
    "writing backup") die "$E_WRITE" "writing the backup copy failed" "$TMP_BAK" ;;
    "writing new") die "$E_WRITE" "writing the new file failed" "$TMP_NEW" ;;
    *) die "$E_INTERNAL" "internal error: the TOML walker failed" "$CONFIG" ;;
  esac
}

# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------
# Few programs and no $(…) on the usual path (each costs a fork and an exec): the walker reads the file
# once, writes the backup and the new file itself, and proves a local edit without a second pass.
main() {
  local verdict verb bytes check lines=() as_owner=0 suffix reload_word

  parse_args "$@"
  validate_args
  TZ=UTC0 printf -v NOW '%(%Y-%m-%dT%H:%M:%SZ)T' -1

  if [[ ! -e $CONFIG ]]; then die "$E_CONFIG" "config file does not exist" "$CONFIG"; fi
  if [[ ! -f $CONFIG ]]; then die "$E_CONFIG" "config file is not a regular file" "$CONFIG"; fi
  if [[ ! -r $CONFIG ]]; then die "$E_CONFIG" "config file is not readable" "$CONFIG"; fi
  resolve_target

  # 0. From here to the rename this update holds the folder's lock: it reads the file another update
  #    may just have written, never a copy from before it.
  take_lock "$DIR"
  { exec {CFG_FD}<"$TARGET"; } 2>/dev/null || die "$E_CONFIG" "config file is not readable" "$CONFIG"

  # 1. May this update write here? (Only asked of it if the file needs a change: a read-only but
  #    current host is fine.)
  inspect_folder
  if [[ -z $WRITE_ERR ]] && ((EUID == 0)) && [[ $FOLDER_OWNER != 0 ]]; then as_owner=1; fi

  # 2. One pass of the walker over the file: validate, select, decide, and, where this update may
  #    write, write the new file and the backup (the bytes it read: the backup always matches what was
  #    transformed) next to the original (same filesystem, so the rename is atomic). The names are
  #    fresh, and only root and the file's owner may create files in this folder (inspect_folder).
  if [[ -z $WRITE_ERR ]] && ((!as_owner)); then
    printf -v suffix '%s.%05d%05d' "$$" "$RANDOM" "$RANDOM"
    TMP_BAK="$DIR/.$BASE.bak.$suffix" TMP_NEW="$DIR/.$BASE.new.$suffix"
  fi
  verdict=$(with_tokens run_walker "$TMP_NEW" "$TMP_BAK" "$FILE_SIZE" <&"$CFG_FD") || walk_failed "$verdict"
  exec {CFG_FD}<&-
  verdict=${verdict##*$'\n'}
  verdict_or_die "$verdict" "$CONFIG"
  case $verdict in
    "ok current" | "ok kept-newer")
      # Nothing written, nothing reloaded.
      TMP_NEW="" TMP_BAK=""
      verdict=${verdict#ok }
      report "${verdict/#current/already-current}" skipped
      return 0
      ;;
  esac
  if [[ -n $WRITE_ERR ]]; then die "$E_WRITE" "${WRITE_ERR%%|*}" "${WRITE_ERR#*|}"; fi
  if ((as_owner)); then
    # In a folder of the file's owner, the file is read as that owner into a private folder of ours
    # (the backup), and the new file is made there.
    PRIVATE_DIR=$(mktemp -d -- "${TMPDIR:-/tmp}/update-runner-token.XXXXXXXXXX" 2>/dev/null) ||
      die "$E_WRITE" "cannot create a private temporary folder" "${TMPDIR:-/tmp}"
    TMP_BAK="$PRIVATE_DIR/backup" TMP_NEW="$PRIVATE_DIR/new"
    setpriv --reuid="$FILE_OWNER" --regid="$FILE_GROUP" --clear-groups -- cat -- "$TARGET" >"$TMP_BAK" 2>/dev/null ||
      die "$E_WRITE" "reading the config file as its owner (uid $FILE_OWNER) failed" "$CONFIG"
    verdict=$(with_tokens run_walker "$TMP_NEW" "" "$FILE_SIZE" <"$TMP_BAK") || walk_failed "$verdict"
    verdict=${verdict##*$'\n'}
    verdict_or_die "$verdict" "$CONFIG"
  fi

  # 3. The walker's own count of the bytes against the files (a write may fail quietly).
  if [[ ! $verdict =~ ^ok\ (change|add|remove)\ ([0-9]+)\ (local|readback)$ ]]; then
    die "$E_INTERNAL" "internal error: the TOML walker gave no verdict" "$CONFIG"
  fi
  verb=${BASH_REMATCH[1]} bytes=${BASH_REMATCH[2]} check=${BASH_REMATCH[3]}
  mapfile -t lines < <(stat -c '%s %u %g %a' -- "$TMP_BAK" "$TMP_NEW" 2>/dev/null)
  if [[ ${lines[0]:-} != "$FILE_SIZE "* ]]; then die "$E_WRITE" "writing the backup copy failed" "$TMP_BAK"; fi
  if [[ ${lines[1]:-} != "$bytes "* ]]; then die "$E_WRITE" "writing the new file failed (short write)" "$TMP_NEW"; fi

  # 4. An edit that is not local: read the result back; it must be valid and now current, or nothing
  #    is replaced.
  if [[ $check == readback ]]; then
    verdict=$(with_tokens run_walker <"$TMP_NEW") || die "$E_WRITE" "the new file could not be read back" "$TMP_NEW"
    if [[ $verdict != "ok current" ]]; then die "$E_WRITE" "the new file did not verify; nothing was replaced" "$CONFIG"; fi
  fi

  if ((as_owner)); then
    # 5-6. Created, written and renamed as the owner (see install_as_owner).
    install_as_owner "$DIR" "$BASE" "$TARGET" "$FILE_MODE"
  else
    # 5. Same owner and mode as the original; the backup keeps the owner but is private (0600). Only
    #    root and the file's owner may write this folder (inspect_folder): nobody can swap these files.
    #    Each tool runs only when the stat above shows it is needed.
    if [[ ${lines[0]#* } != "$FILE_OWNER $FILE_GROUP "* || ${lines[1]#* } != "$FILE_OWNER $FILE_GROUP "* ]]; then
      chown -h -- "$FILE_OWNER:$FILE_GROUP" "$TMP_NEW" "$TMP_BAK" 2>/dev/null ||
        die "$E_WRITE" "cannot give the new file the owner of the original" "$CONFIG"
      # chown may clear the set-id bits: the mode is set again below.
      lines[1]="- - - -"
    fi
    if [[ ${lines[1]##* } != "$FILE_MODE" ]]; then
      chmod -- "$FILE_MODE" "$TMP_NEW" 2>/dev/null || die "$E_WRITE" "cannot give the new file the mode of the original" "$CONFIG"
    fi
    if [[ ${lines[0]##* } != 600 ]]; then
      chmod 0600 -- "$TMP_BAK" 2>/dev/null || die "$E_WRITE" "cannot set the mode of the backup" "$TMP_BAK"
    fi
    # The new file's data on disk before the rename makes it visible: a crash never leaves an empty
    # config.toml. (The backup is not flushed on its own.)
    sync -- "$TMP_NEW" 2>/dev/null || die "$E_WRITE" "flushing the new file to disk failed" "$TMP_NEW"

    # 6. Backup first, then the atomic replace. -T: never move into a directory of that name.
    mv -f -T -- "$TMP_BAK" "$TARGET.bak" 2>/dev/null || die "$E_WRITE" "cannot replace the backup file" "$TARGET.bak"
    TMP_BAK=""
    mv -f -T -- "$TMP_NEW" "$TARGET" 2>/dev/null || die "$E_WRITE" "cannot rename the new file over the original" "$CONFIG"
    TMP_NEW=""
  fi
  # The rename on disk too.
  sync -- "$DIR" 2>/dev/null || true
  # The file is in place: the next update may read it while this one reloads.
  exec {LOCK_FD}<&-

  reload_word=$(reload_runner)
  case $verb in add) verb=added ;; remove) verb=removed ;; *) verb=updated ;; esac
  report "$verb" "$reload_word"
}

main "$@"
