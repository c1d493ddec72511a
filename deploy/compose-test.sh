#!/usr/bin/env bash
# The docker-compose mesh, as a user runs it, checked end to end:
#   up and healthy -> serves (sessions, leases, locks, a dormant service
#   activating on its first order) -> every stateful container recreated
#   (etcd members, matching, historical) with its data back -> an etcd
#   member stopped and restarted (it rejoins) -> the coordinator leader killed
#   (the other replica takes over, nothing lost).
# It runs as its own compose project (tradsys-compose-test) with every port
# left for docker to pick, so it never collides with a stack the user
# started from the same file; a leftover of an earlier run is removed first.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh
P=${COMPOSE_TEST_PROJECT:-tradsys-compose-test}
dc() { docker-compose -p "$P" "$@"; }
compose_isolate_ports docker-compose.yml
cleanup() {
	if [ "${ok:-0}" != 1 ]; then dc ps || true; dc logs --tail=60 || true; fi
	dc down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT
start=$SECONDS

echo "== start project $P (a leftover of an earlier run is removed first)"
dc down -v --remove-orphans >/dev/null 2>&1 || true
dc up -d --no-build
wait_healthy_compose 180
dc ps

C1=$(dc port coordinator1 7000) C2=$(dc port coordinator2 7000) M=$(dc port matching 7103) H=$(dc port historical 7101)
echo "coordinators $C1 $C2, matching $M, historical $H"
call() { grpcurl -plaintext -d "$2" "$1" "tradsys.coordinator.v1.CoordinatorService/$3"; }

echo "== serve: session, memory lease, lock"
SID=$(call "$C1" '{"owner":"compose-test","ttl":"120s"}' CreateSession | jq -r .sessionId)
LEASE=$(call "$C2" "{\"session_id\":\"$SID\",\"component\":\"compose/test\",\"bytes\":1048576}" AcquireMemory | jq -r .leaseId)
call "$C1" "{\"session_id\":\"$SID\",\"name\":\"compose/lock\"}" AcquireLock >/dev/null
[ -n "$SID" ] && [ "$LEASE" != null ] || fail "no session or lease"
tradsys --coordinator "$C1" status

echo "== a dormant service activates on its first call, under a lease"
[ "$(component_state "$M" matching)" = COMPONENT_STATE_DORMANT ] || fail "matching not dormant at start: $(component_state "$M" matching)"
submit() { grpcurl -plaintext -d "{\"symbol\":\"BTCUSDT\",\"order_id\":$2,\"account\":$2,\"side\":\"$3\",\"type\":\"ORDER_TYPE_LIMIT\",\"price\":9000000,\"quantity\":$4}" \
	"$1" tradsys.matching.v1.MatchingService/SubmitOrder; }
submit "$M" 1 SIDE_SELL 5 >/dev/null
has '"trades"' submit "$M" 2 SIDE_BUY 3 || fail "no trade"
[ "$(component_state "$M" matching)" = COMPONENT_STATE_ACTIVE ] || fail "matching not active after an order: $(component_state "$M" matching)"
has ' matching ' tradsys --coordinator "$C1" leases || fail "no lease for matching"
book() { grpcurl -plaintext -d '{"symbol":"BTCUSDT","depth":5}' "$1" tradsys.matching.v1.MatchingService/GetOrderBook; }
has '"quantity": "2"' book "$M" || fail "the book does not rest 2 lots"

echo "== historical backfills the bundled market data (mounted read-only)"
grpcurl -plaintext -max-time 120 -d '{"bundled":true,"symbol":"BTCUSDT"}' "$H" tradsys.historical.v1.HistoricalDataService/Backfill
latest() { grpcurl -plaintext -d '{"symbol":"BTCUSDT","interval":"INTERVAL_1M"}' "$1" tradsys.historical.v1.HistoricalDataService/GetLatest | jq -c .candle; }
CANDLE=$(latest "$H")
[ "$CANDLE" != null ] && [ -n "$CANDLE" ] || fail "no candle after backfill"

echo "== recreate every stateful container: its data is back"
declare -A before
for s in etcd1 etcd2 etcd3 matching historical; do before[$s]=$(dc ps -q $s); done
t0=$SECONDS
dc up -d --no-build --no-deps --force-recreate etcd1 etcd2 etcd3 matching historical
wait_healthy_compose 180
for s in etcd1 etcd2 etcd3 matching historical; do
	[ "$(dc ps -q $s)" != "${before[$s]}" ] || fail "$s was not recreated"
	has "${P}_$s" docker inspect --format '{{range .Mounts}}{{.Name}} {{end}}' "$(dc ps -q $s)" || fail "$s has no named volume ${P}_$s"
done
M=$(dc port matching 7103) H=$(dc port historical 7101)
has "$LEASE" tradsys --coordinator "$C1,$C2" leases || fail "etcd lost lease $LEASE"
has '"quantity": "2"' book "$M" || fail "matching lost the resting 2 lots: $(book "$M")"
[ "$(latest "$H")" = "$CANDLE" ] || fail "historical lost its candles: $(latest "$H") != $CANDLE"
echo "recreated 5 stateful containers, data back, in $((SECONDS - t0))s"

echo "== kill etcd3: the cluster keeps quorum and serves; start it: it rejoins"
dc kill etcd3
retry 20 call "$C1" "{\"session_id\":\"$SID\",\"component\":\"compose/after-etcd\",\"bytes\":1024,\"wait_timeout\":\"5s\"}" AcquireMemory >/dev/null
dc start etcd3
# Healthy means a linearizable read through etcd3 succeeded: it is back in the cluster.
wait_healthy_compose 60 etcd3
retry 20 call "$C1" "{\"session_id\":\"$SID\",\"name\":\"compose/after-rejoin\"}" AcquireLock >/dev/null
has compose/after-rejoin tradsys --coordinator "$C1" locks || fail "lock after rejoin missing"

echo "== kill the coordinator leader"
leader() { tradsys --coordinator "$1" -o json status 2>/dev/null | jq -r '.leader // empty' | sed 's/:7000$//'; }
LEADER=$(leader "$C1,$C2")
[ -n "$LEADER" ] || fail "no leader"
OTHER=$C2; [ "$LEADER" = coordinator2 ] && OTHER=$C1
t0=$SECONDS
dc kill "$LEADER"
deadline=$((SECONDS + 30))
until NEW=$(leader "$OTHER") && [ -n "$NEW" ] && [ "$NEW" != "$LEADER" ]; do
	[ $SECONDS -gt $deadline ] && fail "no failover within 30s"
	sleep 0.2
done
echo "new leader: $NEW after $((SECONDS - t0))s"
has "$LEASE" tradsys --coordinator "$OTHER" leases || fail "lease $LEASE lost in failover"
retry 20 call "$OTHER" "{\"session_id\":\"$SID\",\"component\":\"compose/after-failover\",\"bytes\":1024,\"wait_timeout\":\"5s\"}" AcquireMemory >/dev/null
echo "== the active service kept serving through the failover"
has ' matching ' tradsys --coordinator "$OTHER" leases || fail "matching lease lost"
has '"quantity": "2"' book "$M" || fail "book lost the resting 2 lots"
ok=1
echo "compose test: passed in $((SECONDS - start))s"
