#!/usr/bin/env bash
# The docker-compose mesh, as a user runs it, checked end to end:
#   up and healthy -> serves (sessions, leases, locks, a dormant service
#   activating on its first order) -> every stateful container recreated
#   (etcd members, matching, historical, orders, risk, gateway, strategy) with its
#   data back -> an etcd
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
export TRADSYS_MARKET_DATA_DIR=$(market_data)
dc up -d --no-build
wait_healthy_compose 180
dc ps

ports() { M=$(dc port matching 7103) H=$(dc port historical 7101) O=$(dc port orders 7102) R=$(dc port risk 7106); }
C1=$(dc port coordinator1 7000) C2=$(dc port coordinator2 7000)
ports
echo "coordinators $C1 $C2, matching $M, historical $H, orders $O, risk $R"
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

echo "== an order through orders (risk checked, matched), an account limit in risk"
ord() { grpcurl -plaintext -d "$2" "$1" "tradsys.orders.v1.OrderService/$3"; }
ord "$O" '{"instrument":{"symbol":"ETHUSDT","tick_size":"0.01","lot_size":"0.001"}}' CreateInstrument >/dev/null
grpcurl -plaintext -d '{"limits":{"account":"acct1","max_order_quantity":"50"}}' "$R" tradsys.risk.v1.RiskService/SetLimits >/dev/null
limit() { grpcurl -plaintext -d '{"account":"acct1"}' "$1" tradsys.risk.v1.RiskService/GetLimits | jq -r .stored.maxOrderQuantity; }
[ "$(limit "$R")" = 50 ] || fail "risk limit not stored: $(limit "$R")"
OUT=$(ord "$O" '{"account":"acct1","client_order_id":"c1","symbol":"ETHUSDT","side":"SIDE_SELL","type":"ORDER_TYPE_LIMIT","price":"100.00","quantity":"1.5"}' SubmitOrder)
OID=$(jq -r .order.orderId <<<"$OUT")
[ "$(jq -r .order.status <<<"$OUT")" = ORDER_STATUS_ACCEPTED ] || fail "order not accepted: $OUT"
has '"status": "ORDER_STATUS_REJECTED"' ord "$O" '{"account":"acct1","client_order_id":"c2","symbol":"ETHUSDT","side":"SIDE_SELL","type":"ORDER_TYPE_LIMIT","price":"100.00","quantity":"60"}' SubmitOrder \
	|| fail "risk did not refuse an order over the account's limit"
order_status() { ord "$1" "{\"order_id\":$OID}" GetOrder | jq -r '.order.status + " " + .order.openQuantity'; }
ORDER=$(order_status "$O")
echo "order $OID: $ORDER"

echo "== a trade made through orders becomes a candle (historical follows matching without waking it)"
ord "$O" '{"instrument":{"symbol":"BTC-USD","tick_size":"0.01","lot_size":"0.00000001"}}' CreateInstrument >/dev/null
ord "$O" '{"account":"maker","client_order_id":"m1","symbol":"BTC-USD","side":"SIDE_SELL","type":"ORDER_TYPE_LIMIT","price":"86780.01","quantity":"0.5"}' SubmitOrder >/dev/null
has '"status": "ORDER_STATUS_FILLED"' ord "$O" '{"account":"taker","client_order_id":"t1","symbol":"BTC-USD","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","price":"86780.01","quantity":"0.2"}' SubmitOrder \
	|| fail "the crossing order through orders did not fill"
live_close() { grpcurl -plaintext -d '{"symbol":"BTC-USD","interval":"INTERVAL_1M","include_partial":true}' "$1" tradsys.historical.v1.HistoricalDataService/GetLatest 2>/dev/null | jq -r '.candle.close // empty'; }
for _ in $(seq 1 60); do [ -n "$(live_close "$H")" ] && break; sleep 1; done
jq -en --arg c "$(live_close "$H")" '$c | tonumber == 86780.01' >/dev/null || fail "no BTC-USD candle closing at 86780.01 in historical: '$(live_close "$H")'"

echo "== a strategy (its config is saved by strategy)"
S=$(dc port strategy 7107)
strategies() { grpcurl -plaintext -d '{}' "$1" tradsys.strategy.v1.StrategyService/ListStrategies | jq -c '[.strategies[]?.config.name] | sort'; }
grpcurl -plaintext -d '{"config":{"name":"twap1","type":"STRATEGY_TYPE_TWAP","account":"acct1","symbol":"ETHUSDT","connector":"simulator","twap":{"side":"SIDE_BUY","total_quantity":"1","duration":"3600s","slices":60,"max_slippage":"0.01"}}}' \
	"$S" tradsys.strategy.v1.StrategyService/StartStrategy >/dev/null
STRATS=$(strategies "$S")
[ "$STRATS" = '["twap1"]' ] || fail "strategy not listed: $STRATS"

# (A scratch image has no shell; docker cp reads its files.)
api_keys() { docker cp "$(dc ps -q gateway):/data/api-keys" - | tar -xO; }
KEYS=$(api_keys)
[ -n "$KEYS" ] || fail "gateway wrote no API key file"

echo "== recreate every stateful container: its data is back"
STATEFUL="etcd1 etcd2 etcd3 matching historical orders risk gateway strategy"
declare -A before
for s in $STATEFUL; do before[$s]=$(dc ps -q $s); done
t0=$SECONDS
dc up -d --no-build --no-deps --force-recreate $STATEFUL
wait_healthy_compose 180
for s in $STATEFUL; do
	[ "$(dc ps -q $s)" != "${before[$s]}" ] || fail "$s was not recreated"
	has "${P}_$s" docker inspect --format '{{range .Mounts}}{{.Name}} {{end}}' "$(dc ps -q $s)" || fail "$s has no named volume ${P}_$s"
done
ports
has "$LEASE" tradsys --coordinator "$C1,$C2" leases || fail "etcd lost lease $LEASE"
has '"quantity": "2"' book "$M" || fail "matching lost the resting 2 lots: $(book "$M")"
[ "$(latest "$H")" = "$CANDLE" ] || fail "historical lost its candles: $(latest "$H") != $CANDLE"
[ "$(order_status "$O")" = "$ORDER" ] || fail "orders lost order $OID: $(order_status "$O") != $ORDER"
[ "$(limit "$R")" = 50 ] || fail "risk lost the account limit: $(limit "$R")"
[ "$(api_keys)" = "$KEYS" ] || fail "gateway's API keys changed on recreation"
S=$(dc port strategy 7107)
[ "$(strategies "$S")" = "$STRATS" ] || fail "strategy lost its saved configs: $(strategies "$S") != $STRATS"
echo "recreated $(wc -w <<<"$STATEFUL") stateful containers, data back, in $((SECONDS - t0))s"

echo "== kill etcd3: the cluster keeps quorum and serves; start it: it rejoins"
dc kill etcd3
retry 20 call "$C1" "{\"session_id\":\"$SID\",\"component\":\"compose/after-etcd\",\"bytes\":1024,\"wait_timeout\":\"5s\"}" AcquireMemory >/dev/null
dc start etcd3
# Healthy means a linearizable read through etcd3 succeeded: it is back in the cluster.
wait_healthy_compose 60 etcd3
retry 20 call "$C1" "{\"session_id\":\"$SID\",\"name\":\"compose/after-rejoin\"}" AcquireLock >/dev/null
has compose/after-rejoin tradsys --coordinator "$C1" locks || fail "lock after rejoin missing"

echo "== kill the coordinator leader"
leader() { tradsys --coordinator "$1" --timeout 1s -o json status 2>/dev/null | jq -r '.leader // empty' | sed 's/:7000$//'; }
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
