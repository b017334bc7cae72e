#!/usr/bin/env bash
# The SSM_* variables come from the SSM agent's environment (checked by check_inputs).
# shellcheck disable=SC2154
# run-update-runner-token.sh — what SSM Run Command runs on a runner host: fetch one version of the
# runner's secret with the host's own instance role and hand its token to update-runner-token.sh.
#
# Usage:
#   run-update-runner-token.sh [UPDATER]      (default: update-runner-token.sh next to this script)
#
# Inputs come ONLY from the environment. The SSM document declares its parameters with
# `interpolationType: ENV_VAR`, so the agent exports each one as SSM_<name> and nothing is pasted into
# shell text (docs.aws.amazon.com/systems-manager/latest/userguide/sysman-doc-syntax.html):
#   SSM_SecretArn          secret ARN (or name)
#   SSM_VersionId          the version to install
#   SSM_PreviousVersionId  the version the host holds now, or 'none'
#   SSM_RunnerId           GitLab runner id
#   SSM_GitLabUrl          GitLab URL as written in config.toml
#   SSM_ConfigPath         path of config.toml
#   SSM_ReloadMode         sighup | restart | none
#   SSM_ExpiresAt          the new token's expiry (ISO 8601), or 'none'
#   SSM_Mode               update (default) | add (copy SSM_FromRunnerId's table as SSM_RunnerId's,
#                          replace strategy) | remove (remove SSM_RunnerId's table; no secret is read)
#                          | converge (see below)
#   SSM_FromRunnerId       mode add: the runner whose table is copied; 'none' otherwise
#
# Mode converge (the convergence document, run by a State Manager association on a cadence and on every
# instance that joins the runner's targets) needs only SSM_SecretArn, SSM_ConfigPath and SSM_ReloadMode:
# the version to install is the secret's AWSCURRENT, and the runner id, GitLab url and expiry come from
# that version's value, so a replaced runner (new id) needs no new association. It installs nothing:
#   * while a rotation is open (an AWSPENDING version that is not AWSCURRENT): the rotation hook is
#     pushing that version to the hosts, and AWSCURRENT may already be revoked at GitLab;
#     prints `status=skipped reason=rotation-open runner_id=… config=…`;
#   * before adoption (the stack's placeholder value): prints `status=skipped reason=not-adopted …`;
#   * when the host's table records a later token_expires_at than AWSCURRENT's (the updater's
#     --unless-newer, under its lock): a rotation pushed a newer token after this run read AWSCURRENT.
# Otherwise it is an update to AWSCURRENT: `already-current` on every host that holds it.
#
# The token never touches a file, so a kill (SIGKILL on cancel or timeout) leaves none behind: the AWS
# CLI's stdout goes through pipes (tr, sed, od) into this shell's memory, as hex, and reaches the updater
# on a pipe as --token-file /dev/fd/3 (the previous token as --previous-token-file /dev/fd/4). It is never
# exported, never an argument (ps shows only the ARN and the version id), and never printed: the AWS
# CLI's stderr, the only thing written to the private folder (umask 077, mktemp -d, removed by a trap),
# is reduced to its error code.
#
# stdout/stderr and the exit code are the updater's (see host/README.md), plus:
#   2  a parameter is missing or malformed, or the updater is not next to this script
#   8  the AWS CLI could not read the secret version (one line names the ARN, version and aws exit code)
#   9  the secret version holds no token field
# A previous version that cannot be read is only a warning: the updater needs it only for a config.toml
# whose [[runners]] tables have no id, and then says so itself (exit 5).
#
# Requires bash, coreutils (od among them), sed, grep and the AWS CLI (v2 ships with Amazon Linux 2023;
# install it on Ubuntu). The host's instance role needs secretsmanager:GetSecretValue on the secret (and kms:Decrypt
# when the secret uses a customer managed key).

set -euo pipefail
umask 077
export LC_ALL=C
# The AWS CLI v2 may page its output through `less`; never here.
export AWS_PAGER=""

readonly PROG=run-update-runner-token
readonly E_USAGE=2 E_SECRET=8 E_NO_TOKEN=9

WORK=""
cleanup() {
  if [[ -n $WORK ]]; then rm -rf -- "$WORK" 2>/dev/null || true; fi
}
trap cleanup EXIT
# Without these a signal would end bash without running the EXIT trap (and leave the private folder).
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  printf '%s: error: %s\n' "$PROG" "$2" >&2
  exit "$1"
}

warn() {
  printf '%s: warning: %s\n' "$PROG" "$1" >&2
}

# require NAME — the variable must be set and non-empty. Its value is not echoed.
require() {
  local name=$1
  if [[ -z ${!name:-} ]]; then die "$E_USAGE" "parameter $name is missing or empty (the SSM document sets it)"; fi
}

# The values handed to the AWS CLI are checked here as well as by the document's allowedPattern: a value
# starting with "-" could otherwise be read by the CLI as one of its own options.
readonly SECRET_RE='^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)?[A-Za-z0-9/_+=.@][A-Za-z0-9/_+=.@-]{0,511}$'
readonly VERSION_RE='^[A-Za-z0-9][A-Za-z0-9-]{31,63}$'

check_inputs() {
  local name
  MODE=${SSM_Mode:-update}
  if [[ $MODE == converge ]]; then
    for name in SSM_SecretArn SSM_ConfigPath SSM_ReloadMode; do require "$name"; done
    if [[ ! $SSM_SecretArn =~ $SECRET_RE ]]; then die "$E_USAGE" "parameter SSM_SecretArn is not a secret ARN or name"; fi
    return 0
  fi
  for name in SSM_SecretArn SSM_VersionId SSM_PreviousVersionId SSM_RunnerId SSM_GitLabUrl SSM_ConfigPath SSM_ReloadMode SSM_ExpiresAt; do
    require "$name"
  done
  if [[ ! $SSM_SecretArn =~ $SECRET_RE ]]; then die "$E_USAGE" "parameter SSM_SecretArn is not a secret ARN or name"; fi
  if [[ ! $SSM_VersionId =~ $VERSION_RE ]]; then die "$E_USAGE" "parameter SSM_VersionId is not a secret version id"; fi
  if [[ $SSM_PreviousVersionId != none && ! $SSM_PreviousVersionId =~ $VERSION_RE ]]; then
    die "$E_USAGE" "parameter SSM_PreviousVersionId is neither 'none' nor a secret version id"
  fi
  FROM_ID=${SSM_FromRunnerId:-none}
  case $MODE in
    update | remove) ;;
    add) if [[ ! $FROM_ID =~ ^[1-9][0-9]{0,12}$ ]]; then die "$E_USAGE" "parameter SSM_FromRunnerId must be a runner id in mode add"; fi ;;
    *) die "$E_USAGE" "parameter SSM_Mode must be update, add, remove or converge" ;;
  esac
  # The other values go to the updater as separate arguments; it checks them and says what is wrong.
}

# Set by check_inputs from SSM_Mode and SSM_FromRunnerId (both optional: update, none).
MODE=update
FROM_ID=none

# aws_reason STDERR_FILE EXIT_CODE — one safe phrase for a failed AWS CLI call. Only the error code is
# kept: the CLI's message can echo request parameters, and nothing else from its stderr is printed.
aws_reason() {
  local file=$1 rc=$2 code=""
  if ((rc == 127)); then
    echo "the AWS CLI (aws) is not installed or not on PATH"
    return
  fi
  # AWS CLI service errors read "An error occurred (ResourceNotFoundException) when calling …".
  code=$(grep -o 'An error occurred ([A-Za-z0-9_.]*)' -- "$file" 2>/dev/null | head -n 1 | sed 's/^An error occurred (\(.*\))$/\1/') || code=""
  if [[ -n $code ]]; then
    echo "$code"
  elif grep -q 'Unable to locate credentials' -- "$file" 2>/dev/null; then
    echo "no AWS credentials (is an instance profile attached?)"
  elif grep -q 'Could not connect to the endpoint URL' -- "$file" 2>/dev/null; then
    echo "cannot reach the Secrets Manager endpoint"
  elif grep -qi 'must specify a region' -- "$file" 2>/dev/null; then
    echo "no AWS region configured"
  else
    echo "unknown error"
  fi
}

# Set by main: the region is in the ARN, so the call works even where the CLI has no region configured.
REGION_ARGS=()

# fetch_token VERSION — prints the "token" field of VERSION's secret value ({"runner_id":…,"url":"…",
# "token":"glrt-…",…}) as od hex, one " xx" per byte with sed's final newline, or nothing when there is
# none: hex, because a shell variable cannot hold a NUL (the updater refuses one, it must see it). Pipes
# only. Returns the aws exit code (set -o pipefail) and leaves the CLI's stderr in $WORK/aws-stderr.
fetch_token() {
  # One line whatever the JSON's layout; "token" followed by ":" is the key, never "token_expires_at".
  aws secretsmanager get-secret-value ${REGION_ARGS[@]+"${REGION_ARGS[@]}"} --secret-id "$SSM_SecretArn" --version-id "$1" \
    --query SecretString --output text 2>"$WORK/aws-stderr" </dev/null |
    tr '\r\n' '  ' | sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p' | od -An -v -tx1 | tr -d '\n'
}

# has_token HEX — true when HEX (from fetch_token) holds a byte other than whitespace.
has_token() {
  [[ $1 =~ \ ([13-9a-f][0-9a-f]|0[0-8e-f]|2[1-9a-f]) ]]
}

# unhex HEX — writes the bytes back, for the updater's pipe (printf is a builtin: no command line).
unhex() {
  printf '%b' "${1// /\\x}" 2>/dev/null
}

# stage_version STAGE — prints the id of the version STAGE labels, or nothing when no version has it
# (ResourceNotFoundException). Another failure is the run's: exit 8. Only the id is printed (--query
# VersionId is applied by the CLI to the whole reply, token included, which stays inside the CLI process).
stage_version() {
  local id rc=0 reason
  id=$(aws secretsmanager get-secret-value ${REGION_ARGS[@]+"${REGION_ARGS[@]}"} --secret-id "$SSM_SecretArn" --version-stage "$1" \
    --query VersionId --output text 2>"$WORK/aws-stderr" </dev/null) || rc=$?
  if ((rc != 0)); then
    reason=$(aws_reason "$WORK/aws-stderr" "$rc")
    if [[ $reason == ResourceNotFoundException ]]; then return 0; fi
    die "$E_SECRET" "cannot read the $1 version of $SSM_SecretArn: $reason (aws exit $rc)"
  fi
  if [[ ! $id =~ $VERSION_RE ]]; then die "$E_SECRET" "the $1 version id of $SSM_SecretArn is not a version id"; fi
  printf '%s' "$id"
}

# current_fields — AWSCURRENT's version id, runner_id, url and token_expires_at ('none' for null), one
# per line. The value goes through sed with its token blanked before it reaches this shell.
current_fields() {
  local text rc=0 reason id runner url expires
  text=$(aws secretsmanager get-secret-value ${REGION_ARGS[@]+"${REGION_ARGS[@]}"} --secret-id "$SSM_SecretArn" --version-stage AWSCURRENT \
    --query '[VersionId,SecretString]' --output text 2>"$WORK/aws-stderr" </dev/null |
    tr '\r\n' '  ' | sed -E 's/"token"[[:space:]]*:[[:space:]]*"([^"\\]|\\.)*"/"token":"-"/g') || rc=$?
  if ((rc != 0)); then
    reason=$(aws_reason "$WORK/aws-stderr" "$rc")
    die "$E_SECRET" "cannot read the AWSCURRENT version of $SSM_SecretArn: $reason (aws exit $rc)"
  fi
  if [[ $text =~ \"adopted\"[[:space:]]*:[[:space:]]*false ]]; then
    printf 'not-adopted\n'
    return 0
  fi
  [[ $text =~ ^([A-Za-z0-9-]+)[[:space:]] ]] && id=${BASH_REMATCH[1]} || id=""
  [[ $text =~ \"runner_id\"[[:space:]]*:[[:space:]]*([0-9]+) ]] && runner=${BASH_REMATCH[1]} || runner=""
  [[ $text =~ \"url\"[[:space:]]*:[[:space:]]*\"([^\"\\]*)\" ]] && url=${BASH_REMATCH[1]} || url=""
  [[ $text =~ \"token_expires_at\"[[:space:]]*:[[:space:]]*\"([^\"\\]*)\" ]] && expires=${BASH_REMATCH[1]} || expires=none
  if [[ ! $id =~ $VERSION_RE || -z $runner || -z $url ]]; then
    die "$E_NO_TOKEN" "the AWSCURRENT version of $SSM_SecretArn is not a runner token value (version id, runner_id, url)"
  fi
  printf '%s\n' "$id" "$runner" "$url" "$expires"
}

# converge UPDATER — mode converge (see the header): AWSCURRENT onto this host unless a rotation is open.
converge() {
  local updater=$1 rc=0 text token current_id runner_id url expires pending
  local -a fields args
  # Called as `converge … || rc=$?`, so errexit is off in here: each failure is checked. A helper that
  # dies does so in its $( ) subshell, with its message on stderr and its exit code passed on here.
  text=$(current_fields) || exit $?
  readarray -t fields < <(printf '%s\n' "$text")
  if [[ ${fields[0]} == not-adopted ]]; then
    printf 'status=skipped reason=not-adopted config=%s\n' "$SSM_ConfigPath"
    return 0
  fi
  current_id=${fields[0]} runner_id=${fields[1]} url=${fields[2]} expires=${fields[3]}
  pending=$(stage_version AWSPENDING) || exit $?
  if [[ -n $pending && $pending != "$current_id" ]]; then
    printf 'status=skipped reason=rotation-open runner_id=%s config=%s\n' "$runner_id" "$SSM_ConfigPath"
    return 0
  fi
  token=$(fetch_token "$current_id") || rc=$?
  if ((rc != 0)); then
    die "$E_SECRET" "cannot read secret version $current_id of $SSM_SecretArn: $(aws_reason "$WORK/aws-stderr" "$rc") (aws exit $rc)"
  fi
  if ! has_token "$token"; then die "$E_NO_TOKEN" "secret version $current_id of $SSM_SecretArn holds no token field"; fi
  rm -f -- "$WORK/aws-stderr"
  args=(--config "$SSM_ConfigPath" --runner-id "$runner_id" --url "$url" --token-file /dev/fd/3 --reload "$SSM_ReloadMode")
  if [[ $expires != none ]]; then args+=(--expires-at "$expires" --unless-newer); fi
  rc=0
  bash -- "$updater" "${args[@]}" 3< <(unhex "$token") || rc=$?
  return "$rc"
}

main() {
  local updater rc=0 reason token="" previous=""
  local -a args
  updater=${1:-"$(dirname -- "${BASH_SOURCE[0]}")/update-runner-token.sh"}
  if [[ ! -f $updater || ! -r $updater ]]; then die "$E_USAGE" "the host updater is not at $updater"; fi

  check_inputs
  if [[ $SSM_SecretArn =~ ^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+): ]]; then
    REGION_ARGS=(--region "${BASH_REMATCH[1]}")
  fi
  if [[ $MODE == remove ]]; then
    rc=0
    bash -- "$updater" --mode remove --config "$SSM_ConfigPath" --runner-id "$SSM_RunnerId" --url "$SSM_GitLabUrl" --reload "$SSM_ReloadMode" || rc=$?
    return "$rc"
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/run-update-runner-token.XXXXXXXXXX") ||
    die "$E_USAGE" "cannot create a private temporary folder"
  if [[ $MODE == converge ]]; then
    rc=0
    converge "$updater" || rc=$?
    return "$rc"
  fi

  token=$(fetch_token "$SSM_VersionId") || rc=$?
  if ((rc != 0)); then
    reason=$(aws_reason "$WORK/aws-stderr" "$rc")
    die "$E_SECRET" "cannot read secret version $SSM_VersionId of $SSM_SecretArn: $reason (aws exit $rc)"
  fi
  if ! has_token "$token"; then
    die "$E_NO_TOKEN" "secret version $SSM_VersionId of $SSM_SecretArn holds no token field"
  fi

  args=(--config "$SSM_ConfigPath" --runner-id "$SSM_RunnerId" --url "$SSM_GitLabUrl" --token-file /dev/fd/3 --reload "$SSM_ReloadMode")
  if [[ $MODE == add ]]; then
    # The old table is found by id: no previous token.
    args+=(--mode add --from-runner-id "$FROM_ID")
  elif [[ $SSM_PreviousVersionId != none ]]; then
    rc=0
    previous=$(fetch_token "$SSM_PreviousVersionId") || rc=$?
    if ((rc != 0)); then
      reason=$(aws_reason "$WORK/aws-stderr" "$rc")
      warn "cannot read previous secret version $SSM_PreviousVersionId: $reason (aws exit $rc); going on without it"
      previous=""
    elif ! has_token "$previous"; then
      warn "previous secret version $SSM_PreviousVersionId holds no token field; going on without it"
      previous=""
    else
      args+=(--previous-token-file /dev/fd/4)
    fi
  fi
  rm -f -- "$WORK/aws-stderr"
  if [[ $SSM_ExpiresAt != none ]]; then args+=(--expires-at "$SSM_ExpiresAt"); fi

  # Not exec: the EXIT trap must still remove the private folder once the updater is done.
  rc=0
  if [[ -n $previous ]]; then
    bash -- "$updater" "${args[@]}" 3< <(unhex "$token") 4< <(unhex "$previous") || rc=$?
  else
    bash -- "$updater" "${args[@]}" 3< <(unhex "$token") || rc=$?
  fi
  return "$rc"
}

main "$@"
