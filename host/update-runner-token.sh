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
#   1  unexpected internal error (a bug: please report it), or the walker toml-edit.awk is missing
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
#   UPDATE_RUNNER_TOKEN_WALKER     path of toml-edit.awk (default: next to this script; see find_walker)
#
# Needs its TOML walker, toml-edit.awk, next to it (both ship in host/; the SSM documents write both).
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
# The TOML walker: host/toml-edit.awk, one awk program that reads config.toml once, on stdin, and
# prints its verdict ("ok …" or "err CODE MESSAGE"; its header says what each mode prints). It is a file
# of its own, run with `awk -f`, and ships with this script: find_walker looks for it
#   1. at UPDATE_RUNNER_TOKEN_WALKER when that is set (a packaged install that keeps it elsewhere);
#   2. next to this script as it was started (${BASH_SOURCE[0]}: the folder bash was given, or found on
#      PATH), which is where the SSM documents write it and where a checkout has it; no program runs;
#   3. next to the file behind that path, links resolved (readlink -f), for a script run through a
#      link such as /usr/local/bin/update-runner-token.sh -> /opt/gitlab-runner-rotator/host/….
# The folder, not the working directory: the SSM agent and the local engine start it from anywhere.
# ---------------------------------------------------------------------------------------------------
WALKER=""
find_walker() {
  local self=${BASH_SOURCE[0]} dir real
  if [[ -n ${UPDATE_RUNNER_TOKEN_WALKER:-} ]]; then
    WALKER=$UPDATE_RUNNER_TOKEN_WALKER
  else
    dir=.
    if [[ $self == */* ]]; then dir=${self%/*} && dir=${dir:-/}; fi
    WALKER=$dir/toml-edit.awk
    if [[ ! -f $WALKER ]] && real=$(readlink -f -- "$self" 2>/dev/null) && [[ -n $real ]]; then
      dir=${real%/*}
      WALKER=${dir:-/}/toml-edit.awk
    fi
  fi
  # gawk looks a name without a slash up in AWKPATH: give it a path.
  if [[ $WALKER != */* ]]; then WALKER=./$WALKER; fi
  if [[ ! -f $WALKER || ! -r $WALKER ]]; then
    die "$E_INTERNAL" "the TOML walker toml-edit.awk is missing or unreadable: install it next to update-runner-token.sh (or set UPDATE_RUNNER_TOKEN_WALKER)" "$WALKER"
  fi
  # As root, awk runs the walker with root's rights (its system() could run anything), and opens it by
  # path at each pass: the file and its folder must belong to root and be writable by root alone, as a
  # root-owned install and the SSM documents' 0700 folder are. A copy another user could change or swap
  # (a user's checkout, a world-writable folder, an inherited UPDATE_RUNNER_TOKEN_WALKER) is refused.
  if ((EUID == 0)); then
    local wdir=${WALKER%/*} lines=() line
    mapfile -t lines < <(stat -L -c '%u %a %n' -- "$WALKER" "${wdir:-/}" 2>/dev/null)
    if ((${#lines[@]} != 2)); then die "$E_INTERNAL" "cannot stat the TOML walker or its folder" "$WALKER"; fi
    for line in "${lines[@]}"; do
      if [[ ! $line =~ ^([0-9]+)\ ([0-7]+)\ (.*)$ ]] || [[ ${BASH_REMATCH[1]} != 0 ]] || (((8#${BASH_REMATCH[2]} & 8#022) != 0)); then
        die "$E_INTERNAL" "the TOML walker runs as root, so it and its folder must belong to root and be writable by root only (chown root; chmod go-w): ${line#* * }" "$WALKER"
      fi
    done
  fi
}

# run_walker [OUT BAK SIZE] — runs the walker on its stdin (the config, or the new file to read back:
# an awk operand holding "=" would be taken as an assignment) and prints its verdict lines; fails if
# awk itself failed. OUT and BAK: where it writes the new file and the backup, SIZE: the input's size.
run_walker() {
  URT_OUT=${1:-} URT_BAK=${2:-} URT_SIZE=${3:-} URT_MODE=$MODE URT_FROM=$FROM_ID URT_URL=$URL URT_ID=$RUNNER_ID \
    URT_TOKEN_FILE=$TOKEN_FILE URT_PREV_FILE=$PREV_TOKEN_FILE URT_NOW=$NOW URT_EXPIRES=$EXPIRES_AT \
    URT_EXPIRES_FRAC=$EXPIRES_FRAC URT_UNLESS_NEWER=$UNLESS_NEWER \
    awk -f "$WALKER" 2>/dev/null
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
  find_walker
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
