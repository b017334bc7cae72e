#!/usr/bin/env bash
# doctor.sh — the host side of `rotator doctor`: why is this runner offline? Read-only.
#
# Usage:
#   doctor.sh [--config PATH] [--walker PATH] [--expiring-days N] [--shared yes|no]
#             [--probe yes|no] [--timeout SECONDS]
#   --walker: the updater's TOML walker, toml-edit.awk (default: next to doctor.sh, as host/ ships them
#   and the doctor document writes them). --updater PATH, of older callers, means toml-edit.awk next to
#   that updater. Without a readable walker doctor.sh stops at once: exit 3, one line on stderr.
#
# Runs with bash, coreutils, sed, awk and (for the network checks) curl: no Node, no jq. It never writes
# config.toml, never sends a token anywhere (nor a url's user:password@: urls are printed and probed
# without it), and never calls POST /runners/verify (that would need the token on a command line or in a
# curl config, and it touches GitLab's manager record). What it checks:
#   config.unreadable     the file is missing, not a regular file, or not readable
#   file.mode             group or others have any permission on config.toml
#   config.unparseable    the updater's own TOML walker (toml-edit.awk, in its read-only list mode:
#                         it writes nothing) rejects the file; nothing else is then read from it
#   config.no-runners     no [[runners]] table (every key below is read by the same walker)
#   token.missing         a runner table without a token (or an empty one)
#   token.legacy          a token without the glrt- prefix (only its kind is ever printed)
#   token.expired         token_expires_at in config.toml is in the past
#   token.expiring        ... or within --expiring-days (default 7)
#   self-rotation.enabled the token expires and FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is not true:
#                         "warning" with --shared yes, else "info" (the fleet report raises it to a
#                         warning when the same runner shows up on more than one host)
#   runner.version-too-old `gitlab-runner --version` (when it is on PATH) is older than 17.0.0, which
#                         ignores FF_DISABLE_AUTOMATIC_TOKEN_ROTATION: "error" with --shared yes, else
#                         "info" (the fleet report raises it to an error as it does self-rotation.enabled);
#                         not run when gitlab-runner is missing or prints no readable Version: line
#   network.unreachable   curl GET URL/api/v4/version (no credentials): DNS (curl 6), refused (7),
#                         timeout (28) told apart; other failures keep curl's exit code and words
#   tls.untrusted         curl could not verify GitLab's certificate (60, 51, 77) with the runner's
#                         tls-ca-file when it has one, else the system CAs
#   clock.skew            GitLab's Date header vs this host's clock, more than 60 s apart
# Not covered here (listed in the notRun line): token.invalid, registration.disallowed, url.mismatch,
# manager.stale. They need the token sent to GitLab or an access token: run `rotator doctor` on the host.
#
# Output: one JSON object per line. Findings: {"code","severity","runner","evidence"}, plus "key" (URL#ID)
# on self-rotation.enabled and runner.version-too-old (the fix text
# for each code lives in src/doctor/finding.ts and is added by the fleet report). Then one
# {"runners":["URL#ID", ...]} line (which runners this host has, for the fleet report's sharing check)
# and, last, one {"notRun":[{"check","runner","reason"}, ...]} line.
# Exit code: 0 nothing wrong (info only), 1 warnings, 2 errors; 3 bad arguments or no toml-edit.awk.

set -uo pipefail
umask 077
export LC_ALL=C

CONFIG=/etc/gitlab-runner/config.toml
WALKER=""
EXPIRING_DAYS=7
SHARED=no
PROBE=yes
TIMEOUT=10
MAX_SKEW=60

usage() {
  printf 'usage: doctor.sh [--config PATH] [--walker PATH] [--expiring-days N] [--shared yes|no] [--probe yes|no] [--timeout SECONDS]\n' >&2
  exit 3
}

while (($# > 0)); do
  case $1 in
    --config | --walker | --updater | --expiring-days | --shared | --probe | --timeout)
      (($# >= 2)) || usage
      case $1 in
        --config) CONFIG=$2 ;;
        --walker) WALKER=$2 ;;
        --updater) WALKER=$(dirname -- "$2")/toml-edit.awk ;;
        --expiring-days) EXPIRING_DAYS=$2 ;;
        --shared) SHARED=$2 ;;
        --probe) PROBE=$2 ;;
        --timeout) TIMEOUT=$2 ;;
      esac
      shift 2
      ;;
    *) usage ;;
  esac
done
[[ $EXPIRING_DAYS =~ ^[0-9]{1,4}$ && $TIMEOUT =~ ^[1-9][0-9]{0,2}$ && $SHARED =~ ^(yes|no)$ && $PROBE =~ ^(yes|no)$ && -n $CONFIG ]] || usage

# The walker: next to this script as started, else next to the file behind it (links resolved), as
# update-runner-token.sh finds it (its find_walker says why).
if [[ -z $WALKER ]]; then
  WALKER=$(dirname -- "${BASH_SOURCE[0]}")/toml-edit.awk
  if [[ ! -f $WALKER ]]; then WALKER=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/toml-edit.awk; fi
fi
# gawk looks a name without a slash up in AWKPATH: give it a path.
if [[ $WALKER != */* ]]; then WALKER=./$WALKER; fi
if [[ ! -f $WALKER || ! -r $WALKER ]]; then
  printf 'doctor.sh: error: the TOML walker toml-edit.awk is missing or unreadable (%s): install it next to doctor.sh or pass --walker PATH\n' "$WALKER" >&2
  exit 3
fi
# As root, the walker runs with root's rights: as update-runner-token.sh's find_walker, it and its folder
# must belong to root and be writable by root alone.
if ((EUID == 0)); then
  WALKER_DIR=${WALKER%/*}
  while read -r owner mode; do
    if [[ $owner != 0 ]] || (((8#$mode & 8#022) != 0)); then
      printf 'doctor.sh: error: the TOML walker runs as root, so it and its folder must belong to root and be writable by root only (chown root; chmod go-w) (%s)\n' "$WALKER" >&2
      exit 3
    fi
  done < <(stat -L -c '%u %a' -- "$WALKER" "${WALKER_DIR:-/}" 2>/dev/null || echo 'unknown 777')
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/runner-doctor.XXXXXXXXXX") || exit 2
trap 'rm -rf -- "$WORK"' EXIT

WORST=0
NOT_RUN=""

# json_str TEXT — TEXT as a JSON string (quotes, backslashes and control characters escaped or dropped).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  s=${s//$'\n'/\\n}
  s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037\177')
  printf '"%s"' "$s"
}

# strip_userinfo VAR URL — sets VAR to URL without the user:password@ before its host. A config url may
# carry credentials (https://oauth2:glpat-…@host); they are never printed (the evidence goes to SSM output)
# nor sent to curl. Everything up to the last "@" ahead of any "?" or "#" goes (RFC 3986 ends the userinfo
# at the first "/", but a password with a raw "/" would then show).
strip_userinfo() {
  local scheme="" rest=$2 head
  if [[ $rest == *://* ]]; then scheme=${rest%%://*}://; rest=${rest#*://}; fi
  head=${rest%%[?#]*}
  if [[ $head == *@* ]]; then rest=${rest#"${head%@*}@"}; fi
  printf -v "$1" '%s' "$scheme$rest"
}

json_or_null() {
  if [[ -z $1 ]]; then printf 'null'; else json_str "$1"; fi
}

# finding CODE SEVERITY RUNNER EVIDENCE [KEY] — one line of output; RUNNER "" is null. KEY (URL#ID, as in
# the runners line) lets the fleet report match a runner across hosts.
finding() {
  local key=""
  if (($# > 4)); then key=",\"key\":$(json_str "$5")"; fi
  printf '{"code":%s,"severity":%s,"runner":%s,"evidence":%s%s}\n' "$(json_str "$1")" "$(json_str "$2")" "$(json_or_null "$3")" "$(json_str "$4")" "$key"
  case $2 in
    error) WORST=2 ;;
    warning) if ((WORST < 1)); then WORST=1; fi ;;
  esac
}

# not_run CHECK RUNNER REASON
not_run() {
  local item
  item=$(printf '{"check":%s,"runner":%s,"reason":%s}' "$(json_str "$1")" "$(json_or_null "$2")" "$(json_str "$3")")
  NOT_RUN=${NOT_RUN:+$NOT_RUN,}$item
}

finish() {
  printf '{"notRun":[%s]}\n' "$NOT_RUN"
  exit "$WORST"
}

# fmt_days SECONDS — "2.5 d", or "5.3 h" under a day (as the CLI prints it).
fmt_days() {
  awk -v s="$1" 'BEGIN { d = s / 86400; if (d < 0) d = -d
    if (d < 1) printf "%s h", int(d * 240 + 0.5) / 10; else printf "%s d", int(d * 10 + 0.5) / 10 }'
}

REMOTE_CHECKS="token.invalid registration.disallowed url.mismatch manager.stale"
REMOTE_REASON="the host document does not send the token to GitLab (run rotator doctor on the host)"

# ---------------------------------------------------------------------------------------------------
# 1. The file
# ---------------------------------------------------------------------------------------------------
unreadable=""
if [[ ! -e $CONFIG ]]; then unreadable="does not exist (ENOENT)"
elif [[ ! -f $CONFIG ]]; then unreadable="not a regular file"
elif [[ ! -r $CONFIG ]]; then unreadable="permission denied (run the doctor as the user gitlab-runner runs as) (EACCES)"
fi
if [[ -n $unreadable ]]; then
  finding config.unreadable error "" "$CONFIG: $unreadable"
  for check in config.no-runners file.mode token.missing token.legacy token.expired token.expiring self-rotation.enabled runner.version-too-old network.unreachable tls.untrusted clock.skew $REMOTE_CHECKS; do
    not_run "$check" "" "config.toml could not be read"
  done
  printf '{"runners":[]}\n'
  finish
fi

mode=$(stat -L -c %a -- "$CONFIG" 2>/dev/null || echo 600)
if (((8#$mode & 8#077) != 0)); then
  who=""
  if (((8#$mode & 8#070) != 0)); then who="group"; fi
  if (((8#$mode & 8#007) != 0)); then who="${who:+$who and }others"; fi
  finding file.mode warning "" "$CONFIG has mode $(printf '%04o' "$((8#$mode & 8#777))"): $who may access the runner tokens in it (want 0600)"
fi

# ---------------------------------------------------------------------------------------------------
# 2. The TOML walker of the updater (toml-edit.awk) in its read-only list mode: it validates the whole
#    file as strictly as an update does, then prints one line per [[runners]] table (fields separated by
#    \037: "runner", number, name, url, id, token kind, token_obtained_at, token_expires_at, flag 1/0,
#    tls-ca-file) and "ok list COUNT"; or one "err 4 malformed TOML at line N: …" line. The token never
#    leaves awk: only its kind. URT_OUT is empty: the walker writes nothing.
# ---------------------------------------------------------------------------------------------------
rc=0
URT_MODE=list URT_OUT="" awk -f "$WALKER" <"$CONFIG" >"$WORK/walk" 2>/dev/null || rc=$?
verdict=$(tail -n 1 "$WORK/walk")
case $verdict in
  "ok list "*) ;;
  "err 4 "*)
    finding config.unparseable error "" "$CONFIG: ${verdict#err 4 } (the host updater's validator)"
    for check in config.no-runners token.missing token.legacy token.expired token.expiring self-rotation.enabled runner.version-too-old; do
      not_run "$check" "" "config.toml is not valid TOML"
    done
    for check in $REMOTE_CHECKS network.unreachable tls.untrusted clock.skew; do not_run "$check" "" "config.toml is not valid TOML"; done
    printf '{"runners":[]}\n'
    finish
    ;;
  *)
    # No verdict (awk killed, out of memory): nothing is known about the file; no guess either.
    for check in config.unparseable config.no-runners token.missing token.legacy token.expired token.expiring self-rotation.enabled runner.version-too-old $REMOTE_CHECKS network.unreachable tls.untrusted clock.skew; do
      not_run "$check" "" "the host updater's TOML walker ($WALKER) gave no verdict on config.toml (awk exit $rc)"
    done
    printf '{"runners":[]}\n'
    finish
    ;;
esac

if [[ $verdict == "ok list 0" ]]; then
  finding config.no-runners error "" "$CONFIG parses but has no [[runners]] table"
  printf '{"runners":[]}\n'
  finish
fi

# epoch TIMESTAMP — seconds, or nothing for absent/unknown (gitlab-runner's zero time 0001-01-01).
epoch() {
  local v=$1
  [[ -n $v && $v != 0001-01-01* ]] || return 0
  date -u -d "$v" +%s 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------------
# 4. gitlab-runner's version: FF_DISABLE_AUTOMATIC_TOKEN_ROTATION exists only from 17.0.0
# ---------------------------------------------------------------------------------------------------
RUNNER_VERSION=""
OLD_RUNNER=no
VERSION_REASON=""
if ! command -v gitlab-runner >/dev/null 2>&1; then
  VERSION_REASON="gitlab-runner not found: gitlab-runner is not installed here, or not on PATH"
else
  rc=0
  if command -v timeout >/dev/null 2>&1; then
    version_out=$(timeout 10 gitlab-runner --version </dev/null 2>/dev/null) || rc=$?
  else
    version_out=$(gitlab-runner --version </dev/null 2>/dev/null) || rc=$?
  fi
  RUNNER_VERSION=$(printf '%s\n' "$version_out" | sed -n 's/^[[:space:]]*Version:[[:space:]]*\([^[:space:]]*\)[[:space:]]*$/\1/p' | head -n 1)
  if ((rc == 124)); then VERSION_REASON="gitlab-runner --version did not answer within 10 s"
  elif ((rc != 0)); then VERSION_REASON="gitlab-runner --version failed (exit $rc)"
  elif [[ ! $RUNNER_VERSION =~ ^[0-9A-Za-z.~+_-]{1,64}$ ]]; then VERSION_REASON='gitlab-runner --version printed no readable "Version:" line'
  elif [[ ! $RUNNER_VERSION =~ ^v?([0-9]{1,6})\.([0-9]{1,6})\.([0-9]{1,6})([^0-9]|$) ]]; then
    VERSION_REASON="gitlab-runner --version printed Version: $RUNNER_VERSION, not MAJOR.MINOR.PATCH"
  elif ((10#${BASH_REMATCH[1]} < 17)); then OLD_RUNNER=yes
  fi
fi

NOW=$(date -u +%s)
inventory=""
declare -A PROBE_RUNNERS=()
declare -A PROBE_CA=()
while IFS=$'\037' read -r tag idx name url id kind _obtained expires ff cafile; do
  [[ $tag == runner ]] || continue
  strip_userinfo url "$url"
  if [[ -n $name && -n $id ]]; then label="$name (id $id)"
  elif [[ -n $name ]]; then label=$name
  elif [[ -n $id ]]; then label="id $id"
  else label="[[runners]] #$idx"
  fi
  runner_key="${url%/}#${id:-${name:-table$idx}}"
  inventory=${inventory:+$inventory,}$(json_str "$runner_key")
  if [[ -n $url ]]; then
    key="${url%/}"$'\t'"$cafile"
    PROBE_RUNNERS[$key]="${PROBE_RUNNERS[$key]:+${PROBE_RUNNERS[$key]}, }$label"
    PROBE_CA[$key]=$cafile
  fi
  if [[ $kind == missing ]]; then
    finding token.missing error "$label" "[[runners]] #$idx (url ${url:-(no url)}) has no token key, or an empty one"
    continue
  fi
  if [[ $kind == legacy ]]; then
    finding token.legacy warning "$label" "the token of [[runners]] #$idx (url ${url:-(no url)}) has no glrt- prefix: a runner token from the legacy registration-token workflow"
  fi
  if [[ $OLD_RUNNER == yes ]]; then
    old="gitlab-runner older than 17.0.0 on this host ($RUNNER_VERSION, gitlab-runner --version)"
    if [[ $SHARED == yes ]]; then
      finding runner.version-too-old error "$label" "$old; shared: the operator says so (Shared=yes)" "$runner_key"
    else
      finding runner.version-too-old info "$label" "$old; shared or not: decided by the fleet report" "$runner_key"
    fi
  fi
  exp_s=$(epoch "$expires")
  if [[ -z $exp_s ]]; then
    not_run token.expired "$label" "token_expires_at is unknown in config.toml (absent or 0001-01-01) and the host document does not ask GitLab"
    not_run token.expiring "$label" "token_expires_at is unknown in config.toml (absent or 0001-01-01) and the host document does not ask GitLab"
    continue
  fi
  exp_iso=$(date -u -d "@$exp_s" +%Y-%m-%dT%H:%M:%S.000Z)
  left=$((exp_s - NOW))
  if ((left <= 0)); then
    finding token.expired error "$label" "token_expires_at $exp_iso (config.toml) passed $(fmt_days $((-left))) ago"
  elif ((left <= EXPIRING_DAYS * 86400)); then
    finding token.expiring warning "$label" "token_expires_at $exp_iso (config.toml) is $(fmt_days "$left") away (threshold $EXPIRING_DAYS d)"
  fi
  if [[ $ff != 1 ]]; then
    if [[ $SHARED == yes ]]; then
      finding self-rotation.enabled warning "$label" "the token expires (token_expires_at $exp_iso, config.toml), FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is not true in [runners.feature_flags], and the operator says it is shared (Shared=yes)" "$runner_key"
    else
      finding self-rotation.enabled info "$label" "the token expires (token_expires_at $exp_iso, config.toml), FF_DISABLE_AUTOMATIC_TOKEN_ROTATION is not true in [runners.feature_flags]; whether other hosts share the runner is decided by the fleet report" "$runner_key"
    fi
  fi
done <"$WORK/walk"
printf '{"runners":[%s]}\n' "$inventory"
for check in $REMOTE_CHECKS; do not_run "$check" "" "$REMOTE_REASON"; done
if [[ -n $VERSION_REASON ]]; then not_run runner.version-too-old "" "no gitlab-runner version is known: $VERSION_REASON"; fi

# ---------------------------------------------------------------------------------------------------
# 5. GitLab: GET /api/v4/version without credentials, once per url (and tls-ca-file)
# ---------------------------------------------------------------------------------------------------
if [[ $PROBE == no ]]; then
  for check in network.unreachable tls.untrusted clock.skew; do not_run "$check" "" "probing GitLab is turned off (--probe no)"; done
  finish
fi
if ! command -v curl >/dev/null 2>&1; then
  for check in network.unreachable tls.untrusted clock.skew; do not_run "$check" "" "curl is not installed"; done
  finish
fi
clock_checked=no
for key in "${!PROBE_RUNNERS[@]}"; do
  url=${key%%$'\t'*}
  cafile=${PROBE_CA[$key]}
  who=${PROBE_RUNNERS[$key]}
  target="$url/api/v4/version"
  ca_args=()
  if [[ -n $cafile ]]; then ca_args=(--cacert "$cafile"); fi
  before=$(date -u +%s)
  rc=0
  curl -sS -o /dev/null -D "$WORK/headers" --max-time "$TIMEOUT" "${ca_args[@]}" -- "$target" 2>"$WORK/curl-err" || rc=$?
  after=$(date -u +%s)
  words=$(head -n 1 "$WORK/curl-err" | sed 's/^curl: ([0-9]*) //')
  case $rc in
    0)
      if [[ $clock_checked == no ]]; then
        server_date=$(tr -d '\r' <"$WORK/headers" | sed -n 's/^[Dd][Aa][Tt][Ee]: *//p' | tail -n 1)
        server_s=$(epoch "$server_date")
        if [[ -n $server_s ]]; then
          clock_checked=yes
          skew=$(((before + after) / 2 - server_s))
          abs=${skew#-}
          if ((abs > MAX_SKEW)); then
            if ((skew > 0)); then direction="ahead of"; else direction="behind"; fi
            finding clock.skew warning "" "GitLab at $url sent Date: $server_date; this host's clock read $(date -u -d "@$(((before + after) / 2))" '+%a, %d %b %Y %H:%M:%S GMT'): $abs s $direction GitLab (limit $MAX_SKEW s)"
          fi
        fi
      fi
      ;;
    6) finding network.unreachable error "$who" "GET $target: DNS: the host name does not resolve (curl exit 6: $words)" ;;
    7) finding network.unreachable error "$who" "GET $target: connection refused: nothing listens on that port, or a firewall rejects it (curl exit 7: $words)" ;;
    28) finding network.unreachable error "$who" "GET $target: timeout: no reply in time (routes, security groups, a proxy that drops packets) (curl exit 28: $words)" ;;
    51 | 60 | 77)
      if [[ -n $cafile ]]; then trusted="the tls-ca-file $cafile from config.toml"; else trusted="the system CAs; no tls-ca-file in config.toml"; fi
      finding tls.untrusted error "$who" "GET $target: curl exit $rc: $words; verified against $trusted"
      ;;
    *) finding network.unreachable error "$who" "GET $target: no HTTP reply (curl exit $rc: $words)" ;;
  esac
done
if [[ $clock_checked == no ]]; then not_run clock.skew "" "no GitLab replied with a Date header"; fi
finish
