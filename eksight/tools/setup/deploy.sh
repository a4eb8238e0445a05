#!/usr/bin/env bash
# eksight: deploy the stacks described by eksight.config.json (next to this script) into your AWS account.
# Shipped in the CloudShell bundle made by `eksight ui`. `bash deploy.sh --help` says what it does.
set -euo pipefail

APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIG_FILE="eksight.config.json"
BOOTSTRAP_PARAMETER="/cdk-bootstrap/hnb659fds/version"
MIN_BOOTSTRAP_VERSION=6   # what the synthesized templates' CheckBootstrapVersion rule requires
MIN_NODE_MAJOR=20
# Disk space a first install takes here (MiB), measured (tests/setup/test_install_footprint.py keeps them honest):
# the venv of requirements-deploy.lock without bytecode (312), the Lambda dependencies (104), the CDK CLI (29),
# plus room for cdk.out (the synthesized templates and the zipped Lambda assets). pip and npm keep nothing here:
# no caches, and their temporary files go to $TMPDIR.
VENV_MIB=330
LAMBDA_DEPS_MIB=110
NODE_MODULES_MIB=35
CDK_OUT_MIB=150
CDK=(npx --no-install cdk)

DRY_RUN=0
ENABLE_AUDIT_LOGGING=0
ASSUME_YES=0
APPROVAL="broadening"

usage() {
  cat <<EOF
Usage: bash deploy.sh [--dry-run] [--enable-audit-logging] [--yes] [--require-approval MODE]

Deploys eksight as described by ${CONFIG_FILE} (in ${APP_DIR}):
  1. checks: Node.js >= ${MIN_NODE_MAJOR} and npm, Python >= 3.11, the AWS CLI, free disk space for the
     install (df), and the config itself (python -m eksight.config, in the Python venv it installs first
     from requirements-deploy.lock: pinned, hash-checked, no pip cache, no bytecode); only then AWS:
     working credentials (aws sts get-caller-identity), the account named in the config (if any), the
     CDK bootstrap of every account/region (SSM parameter ${BOOTSTRAP_PARAMETER}), and that every
     cluster has the EKS 'audit' log type on (aws eks describe-cluster)
  2. installs: the Lambda dependencies (requirements-lambda.lock, binary wheels for python3.12/x86_64,
     hash-checked) and the pinned AWS CDK CLI (npm ci --omit=dev: only aws-cdk)
  3. bootstraps the regions that need it (npx cdk bootstrap aws://ACCOUNT/REGION)
  4. deploys every stack (npx cdk deploy --all), then prints each stack's outputs

Nothing in AWS is changed before every check has passed.

Options:
  --dry-run                 print every command it would run (prefixed with '+ '), run none of them
  --enable-audit-logging    turn the EKS 'audit' log type on for the clusters that have it off
                            (aws eks update-cluster-config; other log types are left as they are).
                            Without it, clusters with audit logging off stop the deploy, unless the
                            config sets enable_audit_logging for their region (the stack turns it on)
  --yes                     bootstrap the regions that need it without asking
  --require-approval MODE   passed to cdk deploy: broadening (default: asks before IAM or security
                            group changes that widen access), any-change, or never
  -h, --help                show this help
EOF
}

die() {
  printf 'eksight: error: %s\n' "$*" >&2
  exit 1
}

warn() {
  printf 'eksight: warning: %s\n' "$*" >&2
}

say() {
  printf '==> %s\n' "$*"
}

while (($#)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --enable-audit-logging) ENABLE_AUDIT_LOGGING=1 ;;
    --yes | -y) ASSUME_YES=1 ;;
    --require-approval)
      (($# >= 2)) || { usage >&2; exit 2; }
      APPROVAL="$2"
      shift
      ;;
    --require-approval=*) APPROVAL="${1#*=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      printf 'eksight: unknown option %s\n\n' "$1" >&2
      usage >&2
      exit 2
      ;;
  esac
  shift
done
case "$APPROVAL" in
  broadening | any-change | never) ;;
  *) printf 'eksight: --require-approval must be broadening, any-change or never, not %s\n' "$APPROVAL" >&2; exit 2 ;;
esac

# A command line as it can be pasted into a shell (arguments quoted only when they need it).
quote() {
  local out="" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s' "${out# }"
}

exec 3>&1  # the terminal, even inside $(...)


# run CMD...: prints the command, then runs it; --dry-run only prints it.
run() {
  printf '+ %s\n' "$(quote "$@")" >&3
  ((DRY_RUN)) || "$@"
}

# maybe NOTE CMD...: a command that runs only in some situations; --dry-run prints it with that note.
maybe() {
  local note="$1"
  shift
  if ((DRY_RUN)); then
    printf '+ %s  # %s\n' "$(quote "$@")" "$note" >&3
  else
    run "$@"
  fi
}

# capture CMD...: a command whose output is needed (run quietly). --dry-run prints it and returns nothing.
capture() {
  if ((DRY_RUN)); then
    printf '+ %s\n' "$(quote "$@")" >&3
    return 0
  fi
  "$@"
}

cd "$APP_DIR"
[[ -f $CONFIG_FILE ]] || die "$APP_DIR/$CONFIG_FILE not found: run this script from the extracted bundle"
((DRY_RUN)) && say "dry run: every command is printed, none is run"

# --- 1. checks (read-only) ---------------------------------------------------------------------------
say "checking prerequisites"
command -v node >/dev/null || die "Node.js ${MIN_NODE_MAJOR} or newer is required (https://nodejs.org); install it and run again"
command -v npm >/dev/null || die "npm is required (it comes with Node.js); install it and run again"
command -v aws >/dev/null || die "the AWS CLI is required (AWS CloudShell has it); install it and run again"
node_version="$(capture node --version)"
if ((!DRY_RUN)); then
  node_major="${node_version#v}"
  node_major="${node_major%%.*}"
  if [[ ! $node_major =~ ^[0-9]+$ ]] || ((node_major < MIN_NODE_MAJOR)); then
    die "Node.js ${MIN_NODE_MAJOR} or newer is required, found ${node_version}"
  fi
fi
capture npm --version >/dev/null

PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    PYTHON="$candidate"
    break
  fi
done
[[ -n $PYTHON ]] || die "Python 3.11 or newer is required (in CloudShell: sudo dnf install -y python3.11)"

# What the checks need from the config, read with the standard library (the venv does not exist yet);
# eksight.config validates the whole file below, once the venv is there.
config_lines="$("$PYTHON" - "$CONFIG_FILE" <<'PY'
import json, sys
config = json.load(open(sys.argv[1], encoding="utf-8"))
defaults = config.get("defaults") or {}
print("account", config.get("account") or "-")
print("prefix", config.get("name_prefix") or "eksight")
for region, entry in config["regions"].items():
    audit = entry.get("enable_audit_logging", defaults.get("enable_audit_logging", False))
    print("region", region, "1" if audit else "0", *entry.get("clusters", []))
PY
)" || die "cannot read $CONFIG_FILE (generate it again with eksight ui)"

CONFIG_ACCOUNT=""
PREFIX="eksight"
REGIONS=()
REGION_AUDIT=()
REGION_CLUSTERS=()
while read -r kind first second rest; do
  case "$kind" in
    account) [[ $first == - ]] || CONFIG_ACCOUNT="$first" ;;
    prefix) PREFIX="$first" ;;
    region)
      REGIONS+=("$first")
      REGION_AUDIT+=("$second")
      REGION_CLUSTERS+=("$rest")
      ;;
  esac
done <<<"$config_lines"
((${#REGIONS[@]})) || die "$CONFIG_FILE names no region"

# Refuse before installing anything when the disk cannot hold the install (CloudShell's home is 1 GB).
needed_mib="$CDK_OUT_MIB"
[[ -f .venv/.installed ]] || needed_mib=$((needed_mib + VENV_MIB))
[[ -f build/lambda-deps/.installed ]] || needed_mib=$((needed_mib + LAMBDA_DEPS_MIB))
[[ -f node_modules/.installed ]] || needed_mib=$((needed_mib + NODE_MODULES_MIB))
free_mib="$(df -Pm "$APP_DIR" | awk 'NR == 2 { print $4 }')"
if [[ $free_mib =~ ^[0-9]+$ ]] && ((free_mib < needed_mib)); then
  if ((DRY_RUN)); then report=warn; else report=die; fi
  "$report" "only ${free_mib} MiB free in $APP_DIR; the install needs about ${needed_mib} MiB. Free some space (du -sh ~/* ~/.cache ~/.npm shows what takes it), or extract the bundle under /tmp, which is larger but emptied when the CloudShell session ends (the uploaded bundle stays in your home; run this again in a new session): mkdir -p /tmp/eksight && tar -xzf ~/eksight-bundle.tar.gz -C /tmp/eksight && bash /tmp/eksight/deploy.sh"
fi

# The Python venv the CDK app runs in (local to this directory), then the whole config checked by eksight.config,
# the one validator: a config error stops here, before any AWS call.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
if ((DRY_RUN)) || [[ ! .venv/.installed -nt requirements-deploy.lock ]]; then
  say "installing the Python venv (requirements-deploy.lock)"
  run "$PYTHON" -m venv .venv
  run .venv/bin/python -m pip install --quiet --no-compile --require-hashes -r requirements-deploy.lock
  run touch .venv/.installed
fi
say "checking $CONFIG_FILE"
run .venv/bin/python -m eksight.config "$CONFIG_FILE" || die "$CONFIG_FILE is not valid (above); fix it, or generate it again with eksight ui. Nothing was changed."

if ((DRY_RUN)); then
  capture aws sts get-caller-identity --query Account --output text
  ACCOUNT="${CONFIG_ACCOUNT:-ACCOUNT}"
else
  ACCOUNT="$(aws sts get-caller-identity --query Account --output text)" ||
    die "no working AWS credentials (aws sts get-caller-identity failed). In CloudShell they come from your console session; elsewhere run aws configure or set AWS_PROFILE"
  if [[ -n $CONFIG_ACCOUNT && $ACCOUNT != "$CONFIG_ACCOUNT" ]]; then
    die "your credentials are for account $ACCOUNT, but $CONFIG_FILE deploys to account $CONFIG_ACCOUNT. Use credentials of $CONFIG_ACCOUNT, or change \"account\" in the config"
  fi
fi
say "account ${ACCOUNT}, regions: ${REGIONS[*]}"

BOOTSTRAP=()
for region in "${REGIONS[@]}"; do
  version="$(capture aws ssm get-parameter --region "$region" --name "$BOOTSTRAP_PARAMETER" \
    --query Parameter.Value --output text 2>/dev/null)" || version=""
  if ((!DRY_RUN)); then
    if [[ ! $version =~ ^[0-9]+$ ]]; then
      say "$region: not bootstrapped for the AWS CDK (no $BOOTSTRAP_PARAMETER)"
      BOOTSTRAP+=("$region")
    elif ((version < MIN_BOOTSTRAP_VERSION)); then
      say "$region: CDK bootstrap version $version is older than $MIN_BOOTSTRAP_VERSION"
      BOOTSTRAP+=("$region")
    fi
  fi
done

AUDIT_OFF=()   # region/cluster that this script would have to turn on
STACK_TURNS_ON=()
for i in "${!REGIONS[@]}"; do
  region="${REGIONS[$i]}"
  read -r -a clusters <<<"${REGION_CLUSTERS[$i]}"
  for cluster in "${clusters[@]}"; do
    types="$(capture aws eks describe-cluster --region "$region" --name "$cluster" \
      --query 'cluster.logging.clusterLogging[?enabled].types[]' --output text)" ||
      die "cannot describe EKS cluster $cluster in $region (does it exist there, and may you call eks:DescribeCluster?)"
    ((DRY_RUN)) && continue
    if [[ " $types " == *[[:space:]]audit[[:space:]]* ]]; then
      continue
    elif [[ ${REGION_AUDIT[$i]} == 1 ]]; then
      STACK_TURNS_ON+=("$region/$cluster")
    else
      AUDIT_OFF+=("$region/$cluster")
    fi
  done
done
if ((${#STACK_TURNS_ON[@]})); then
  say "audit logging is off on ${STACK_TURNS_ON[*]}; the stack turns it on (enable_audit_logging)"
fi
if ((${#AUDIT_OFF[@]})) && ((!ENABLE_AUDIT_LOGGING)); then
  die "EKS audit logging is off on: ${AUDIT_OFF[*]}. eksight subscribes to each cluster's audit log, so turn it on: run again with --enable-audit-logging, or set \"enable_audit_logging\": true for the region in $CONFIG_FILE. Nothing was changed."
fi

if ((${#BOOTSTRAP[@]})) && ((!ASSUME_YES)); then
  if [[ -t 0 ]]; then
    printf 'Bootstrap the AWS CDK in %s now (creates the CDKToolkit stack: an S3 bucket, an ECR repository and deploy roles)? [y/N] ' "${BOOTSTRAP[*]}"
    read -r answer
    [[ $answer =~ ^[Yy] ]] || die "not bootstrapped; nothing was changed. Run: npx cdk bootstrap aws://${ACCOUNT}/REGION, or run again with --yes"
  else
    die "${BOOTSTRAP[*]} must be bootstrapped for the AWS CDK first; nothing was changed. Run again with --yes to do it"
  fi
fi

# --- 2. install -----------------------------------------------------------------------------------------
say "installing (the Lambda dependencies and the pinned AWS CDK CLI)"
if ((DRY_RUN)) || [[ ! build/lambda-deps/.installed -nt requirements-lambda.lock ]]; then
  run rm -rf build/lambda-deps
  # as `make install` does (Makefile): binary wheels for the Lambda runtime, python3.12 on x86_64
  run .venv/bin/python -m pip install --quiet --no-compile --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 --only-binary=:all: \
    --target build/lambda-deps --require-hashes -r requirements-lambda.lock
  run touch build/lambda-deps/.installed
fi
export npm_config_cache="${TMPDIR:-/tmp}/eksight-npm-cache"  # not ~/.npm: the home directory is small
if ((DRY_RUN)) || [[ ! node_modules/.installed -nt package-lock.json ]]; then
  run npm ci --omit=dev --no-audit --no-fund --loglevel=error  # aws-cdk only: the rest serves the tests
  run touch node_modules/.installed
fi
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="$MIN_NODE_MAJOR"

# --- 3. bootstrap and audit logging ------------------------------------------------------------------------
if ((DRY_RUN)); then
  for region in "${REGIONS[@]}"; do
    maybe "if $region is not bootstrapped" "${CDK[@]}" bootstrap "aws://${ACCOUNT}/${region}"
  done
else
  for region in "${BOOTSTRAP[@]}"; do
    run "${CDK[@]}" bootstrap "aws://${ACCOUNT}/${region}"
  done
fi

enable_audit_logging() {  # region cluster
  local region="$1" cluster="$2" update status="" tries
  local logging='{"clusterLogging":[{"types":["audit"],"enabled":true}]}'
  ((DRY_RUN)) || printf '+ %s\n' "$(quote aws eks update-cluster-config --region "$region" --name "$cluster" \
    --logging "$logging")"
  update="$(capture aws eks update-cluster-config --region "$region" --name "$cluster" \
    --logging "$logging" --query update.id --output text)"
  for ((tries = 0; tries < 60; tries++)); do
    status="$(capture aws eks describe-update --region "$region" --name "$cluster" --update-id "${update:-UPDATE_ID}" \
      --query update.status --output text)"
    ((DRY_RUN)) && break
    case "$status" in
      Successful) break ;;
      Failed | Cancelled) die "turning on audit logging for $cluster in $region: update $update $status" ;;
    esac
    sleep 10
  done
  [[ $status == Successful ]] || ((DRY_RUN)) || die "audit logging of $cluster in $region is still updating; run again later"
  for ((tries = 0; tries < 30; tries++)); do  # the log group appears with the first audit event
    [[ -n "$(capture aws logs describe-log-groups --region "$region" --log-group-name-prefix "/aws/eks/$cluster/cluster" \
      --query 'logGroups[].logGroupName' --output text)" ]] && break
    ((DRY_RUN)) && break
    sleep 10
  done
}

if ((ENABLE_AUDIT_LOGGING)); then
  if ((DRY_RUN)); then
    for i in "${!REGIONS[@]}"; do
      [[ ${REGION_AUDIT[$i]} == 1 ]] && continue  # the stack turns it on
      read -r -a clusters <<<"${REGION_CLUSTERS[$i]}"
      for cluster in "${clusters[@]}"; do
        printf '# if audit logging is off on %s in %s:\n' "$cluster" "${REGIONS[$i]}" >&3
        enable_audit_logging "${REGIONS[$i]}" "$cluster"
      done
    done
  else
    for entry in "${AUDIT_OFF[@]}"; do
      say "turning on EKS audit logging for ${entry#*/} in ${entry%%/*}"
      enable_audit_logging "${entry%%/*}" "${entry#*/}"
    done
  fi
fi

# --- 4. deploy and show the outputs -------------------------------------------------------------------------
say "deploying (npx cdk deploy --all; --require-approval ${APPROVAL})"
run "${CDK[@]}" deploy --all --require-approval "$APPROVAL" -c "config=${CONFIG_FILE}"

say "stack outputs"
for region in "${REGIONS[@]}"; do
  for stack in "${PREFIX}-ingestion-${region}" "${PREFIX}-detection-${region}"; do
    run aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
      --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table
  done
done
if ((DRY_RUN)); then
  say "dry run: nothing was run"
else
  say "done: findings go to each region's ${PREFIX} findings bus (outputs above)"
fi
