#!/usr/bin/env bash
# Seed 000 §7.1, the smart-home thermostat, scripted: a vendor node, devices
# with public tokens, a firmware update, and the vendor disappearing while
# the user moves to their own node. The same flow is tested end to end in
# crates/orb-cli/tests/thermostat.rs.
#
#   examples/thermostat/run.sh          # from the repository root
#
# Uses target/debug/orb and the `thermostat_sensor` example of orb-client
# (both built here), build/guests/thermostat{,-v2}.wasm (scripts/build-guests).
# Everything lives in a temporary folder; both nodes are stopped at the end.
set -euo pipefail
shopt -s inherit_errexit
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
NET=7f3a9c NS=home-7f3a9c SETPOINT=20
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

ORB_GUEST_ONLY="thermostat thermostat-v2" scripts/build-guests
cargo build -q --bin orb -p orb-cli
cargo build -q -p orb-client --example thermostat_sensor
ORB=$TARGET/debug/orb
DEVICE=$TARGET/debug/examples/thermostat_sensor
V1=build/guests/thermostat.wasm V2=build/guests/thermostat-v2.wasm

# serve DIR: starts a node on a free port; prints its URL.
serve() {
  local dir=$1
  mkdir -p "$dir"
  "$ORB" serve --listen 127.0.0.1:0 --data-dir "$dir" >"$dir/out.log" 2>&1 &
  PIDS+=($!)
  echo $! >"$dir/pid"
  for _ in $(seq 100); do
    local url
    url=$(sed -n 's/^orb listening on //p' "$dir/out.log")
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.1
  done
  echo "node in $dir did not start" >&2; exit 1
}
# deploy SERVER TOKEN FILE: uploads; prints the hash.
deploy() { ORB_SERVER=$1 ORB_TOKEN=$2 "$ORB" deploy "$3" >/dev/null; "$ORB" hash "$3"; }
# setup SERVER PRIVATE_TOKEN FIRMWARE: alias, whitelist, trigger and rule.
setup() {
  local hash
  hash=$(deploy "$1" "$2" "$3")
  ORB_SERVER=$1 ORB_TOKEN=$2 "$ORB" alias set thermostat "$hash" >/dev/null
  ORB_SERVER=$1 ORB_TOKEN=$2 "$ORB" ns whitelist "$NS" --set "$hash" >/dev/null
  ORB_SERVER=$1 ORB_TOKEN=$2 "$ORB" trigger create reading --ns "$NS" --prefix readings/ >/dev/null
  ORB_SERVER=$1 ORB_TOKEN=$2 "$ORB" rule create decide --trigger reading thermostat decide \
    "setpoint:=$SETPOINT" --ns "$NS" --write-to furnace >/dev/null
  echo "$hash"
}
mint() { ORB_SERVER=$1 ORB_TOKEN=$2 "$ORB" token mint --ns "$NS:rw" --expires 365d --json | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p'; }
furnace() { sleep 1; ORB_SERVER=$1 ORB_TOKEN=$2 "$ORB" ns get "$NS" furnace; }
sensor() { ORB_SERVER=$1 ORB_TOKEN=$2 ORB_LOCAL_DIR=$WORK/device "$DEVICE" "$NS" "${@:3}"; }

say "the vendor's node, account, firmware v1, devices with public tokens"
VENDOR=$(serve "$WORK/vendor")
VENDOR_TOKEN=$(ORB_SERVER=$VENDOR ORB_TOKEN=$(cat "$WORK/vendor/admin.token") \
  "$ORB" account create --name acme --json | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
H1=$(setup "$VENDOR" "$VENDOR_TOKEN" "$V1")
DEV=$(mint "$VENDOR" "$VENDOR_TOKEN")
sensor "$VENDOR" "$DEV" kitchen 21.5
sensor "$VENDOR" "$DEV" hall 18.0
echo "furnace: $(furnace "$VENDOR" "$VENDOR_TOKEN")   (lowest 18.0 < $SETPOINT)"

say "firmware update: v2 (hysteresis) whitelisted, alias switched"
H2=$(deploy "$VENDOR" "$VENDOR_TOKEN" "$V2")
ORB_SERVER=$VENDOR ORB_TOKEN=$VENDOR_TOKEN "$ORB" ns whitelist "$NS" --set "$H1" --set "$H2" >/dev/null
ORB_SERVER=$VENDOR ORB_TOKEN=$VENDOR_TOKEN "$ORB" alias set thermostat "$H2" >/dev/null
sensor "$VENDOR" "$DEV" hall 20.3 --decide "$SETPOINT"
echo "furnace: $(furnace "$VENDOR" "$VENDOR_TOKEN")   (v2 keeps it on up to 20.5)"

say "the vendor disappears (the user saved the namespace first)"
ORB_SERVER=$VENDOR ORB_TOKEN=$DEV "$ORB" ns export "$NS" -o "$WORK/home.json"
kill "$(cat "$WORK/vendor/pid")"; wait "$(cat "$WORK/vendor/pid")" 2>/dev/null || true
sensor "$VENDOR" "$DEV" thermostat 17.0 --decide "$SETPOINT" --firmware "$V2"

say "the user's own node: account, import, same hashes, whitelist, new device tokens"
MINE=$(serve "$WORK/mine")
MY_TOKEN=$(ORB_SERVER=$MINE ORB_TOKEN=$(cat "$WORK/mine/admin.token") \
  "$ORB" account create --name me --json | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
ORB_SERVER=$MINE ORB_TOKEN=$MY_TOKEN "$ORB" ns import "$NS" "$WORK/home.json"
deploy "$MINE" "$MY_TOKEN" "$V1" >/dev/null
[ "$(setup "$MINE" "$MY_TOKEN" "$V2")" = "$H2" ] && echo "same firmware hash: $H2"
DEV=$(mint "$MINE" "$MY_TOKEN")
sensor "$MINE" "$DEV" hall 23.0
echo "furnace: $(furnace "$MINE" "$MY_TOKEN")   (on the user's node, vendor gone)"
sensor "$MINE" "$DEV" kitchen 17.5 --decide "$SETPOINT"
echo "furnace: $(furnace "$MINE" "$MY_TOKEN")"
