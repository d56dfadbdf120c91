#!/usr/bin/env bash
# The fleet figures (make fleet): fleetsim's TERMINALS × RECORDS reconnecting at once against
# acquirerd on SQLite, on PostgreSQL ($POSAGENT_PG_DSN) and on two acquirerd nodes sharing that
# PostgreSQL; each run's report printed, then what `acquirerd ledger` holds for its terminals.
# Usage: cmd/fleetsim/fleet.sh BIN_DIR   (TERMINALS, RECORDS, CONCURRENCY, STORES from the environment)
# POSAGENT_PG_DSN must name a database acquirerd may migrate, empty or created by an acquirerd
# with FLEET_MASTER_KEY (a master key file; a new one in the temporary directory by default).
set -euo pipefail
bin=${1:-bin}
terminals=${TERMINALS:-1000}
records=${RECORDS:-100}
concurrency=${CONCURRENCY:-0}
stores=${STORES:-sqlite postgres}
work=$(mktemp -d "${TMPDIR:-/tmp}/posagent-fleet.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME DB [MASTER_KEY_FILE]: runs acquirerd on a free loopback port; sets $url.
start() {
  local name=$1 db=$2 key=${3:-}
  : >"$work/$name.out"
  "$bin/acquirerd" --listen 127.0.0.1:0 --db "$db" ${key:+--master-key-file "$key"} \
    >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 300); do
    url=$(sed -n 's/^acquirerd listening on //p' "$work/$name.out")
    [ -n "$url" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "acquirerd $name did not start" >&2; exit 1
}

# fleet TITLE DB KEY URLS: one fleetsim run and the ledger's count for its terminals.
fleet() {
  local title=$1 db=$2 key=$3 urls=$4 prefix
  prefix="fleet-$(date +%s)-$RANDOM"
  echo "== $title: $terminals terminals × $records records"
  echo "\$ fleetsim --acquirer $urls --db ${db%%\?*}… --terminals $terminals --records $records --concurrency $concurrency"
  "$bin/fleetsim" --acquirer "$urls" --db "$db" ${key:+--master-key-file "$key"} --terminals "$terminals" \
    --records "$records" --concurrency "$concurrency" --prefix "$prefix" --dir "$work/journals-$prefix" 2>"$work/$prefix.progress" ||
    { tail -n 3 "$work/$prefix.progress" >&2; return 1; }
  echo "acquirerd ledger: $("$bin/acquirerd" ledger --db "$db" ${key:+--master-key-file "$key"} --json | grep -c "\"terminal\":\"$prefix-") entries for $prefix-*"
  rm -rf "$work/journals-$prefix"
}

if [[ " $stores " == *" sqlite "* ]]; then
  start sqlite "sqlite:$work/acquirer.db"
  fleet "SQLite" "sqlite:$work/acquirer.db" "" "$url"
fi
[[ " $stores " == *" postgres "* ]] || exit 0
if [ -z "${POSAGENT_PG_DSN:-}" ]; then
  echo "== PostgreSQL: skipped (set POSAGENT_PG_DSN to a database acquirerd may use)"
  exit 0
fi
key=${FLEET_MASTER_KEY:-$work/master.key}
start pg1 "$POSAGENT_PG_DSN" "$key"
url1=$url
fleet "PostgreSQL, one node" "$POSAGENT_PG_DSN" "$key" "$url1"
start pg2 "$POSAGENT_PG_DSN" "$key"
fleet "PostgreSQL, two nodes" "$POSAGENT_PG_DSN" "$key" "$url1,$url"
