#!/usr/bin/env bash
# Brings the docker-compose mesh up from locally built FROM scratch images,
# checks that it is healthy and serves, then kills an etcd member and the
# coordinator leader and checks that it still serves with nothing lost.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin/static:$PWD/bin:$PATH"
P=tradsys-compose-test
dc() { docker-compose -p "$P" "$@"; }
cleanup() {
	if [ "${ok:-0}" != 1 ]; then dc logs --tail=40 || true; fi
	dc down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== build images and start"
dc build -q
dc up -d

wait_healthy() {
	local deadline=$((SECONDS + 120))
	while :; do
		local bad=0
		for c in $(dc ps -q "$@"); do
			s=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")
			[ "$s" = healthy ] || bad=1
		done
		[ $bad = 0 ] && return 0
		[ $SECONDS -gt $deadline ] && { echo "not healthy after 120s"; dc ps; return 1; }
		sleep 1
	done
}
wait_healthy
dc ps

C1=127.0.0.1:7000 C2=127.0.0.1:7010
# has TEXT CMD...: CMD's output contains TEXT. (Not `CMD | grep -q`: under
# pipefail, grep exiting at the first match makes CMD die of SIGPIPE.)
has() { local want=$1; shift; local out; out=$("$@") && [[ "$out" == *"$want"* ]]; }
call() { grpcurl -plaintext -d "$2" "$1" "tradsys.coordinator.v1.CoordinatorService/$3"; }
echo "== serve: session, memory lease, lock"
SID=$(call $C1 '{"owner":"compose-test","ttl":"60s"}' CreateSession | sed -n 's/.*"sessionId": "\(.*\)".*/\1/p')
LEASE=$(call $C2 "{\"session_id\":\"$SID\",\"component\":\"compose/test\",\"bytes\":1048576}" AcquireMemory | sed -n 's/.*"leaseId": "\(.*\)".*/\1/p')
call $C1 "{\"session_id\":\"$SID\",\"name\":\"compose/lock\"}" AcquireLock >/dev/null
[ -n "$SID" ] && [ -n "$LEASE" ] || { echo "no session or lease"; exit 1; }
tradsys --coordinator $C1 status

echo "== a dormant service activates on its first call, under a lease"
M=127.0.0.1:7103
state() {
	local out
	out=$(grpcurl -plaintext -d '{"component":"matching"}' $M tradsys.lifecycle.v1.LifecycleService/GetState) &&
		[[ $out =~ COMPONENT_STATE_[A-Z]+ ]] && echo "${BASH_REMATCH[0]}"
}
[ "$(state)" = COMPONENT_STATE_DORMANT ] || { echo "matching not dormant at start: $(state)"; exit 1; }
grpcurl -plaintext -d '{"symbol":"BTCUSDT","order_id":1,"account":1,"side":"SIDE_SELL","type":"ORDER_TYPE_LIMIT","price":9000000,"quantity":5}' \
	$M tradsys.matching.v1.MatchingService/SubmitOrder >/dev/null
has '"trades"' grpcurl -plaintext -d '{"symbol":"BTCUSDT","order_id":2,"account":2,"side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","price":9000000,"quantity":3}' \
	$M tradsys.matching.v1.MatchingService/SubmitOrder || { echo "no trade"; exit 1; }
[ "$(state)" = COMPONENT_STATE_ACTIVE ] || { echo "matching not active after an order: $(state)"; exit 1; }
has ' matching ' tradsys --coordinator $C1 leases || { echo "no lease for matching"; exit 1; }
for port in 7101 7105; do tradsys probe 127.0.0.1:$port >/dev/null; done

echo "== stop etcd3: the cluster keeps quorum"
dc stop etcd3
call $C1 "{\"session_id\":\"$SID\",\"component\":\"compose/after-etcd\",\"bytes\":1024,\"wait_timeout\":\"5s\"}" AcquireMemory >/dev/null

echo "== kill the coordinator leader"
LEADER=$(tradsys --coordinator $C1,$C2 -o json status | sed -n 's/.*"leader": "\([a-z0-9]*\):7000".*/\1/p')
[ -n "$LEADER" ] || { echo "no leader"; exit 1; }
OTHER=$C2; [ "$LEADER" = coordinator2 ] && OTHER=$C1
dc kill "$LEADER"
deadline=$((SECONDS + 30))
until NEW=$(tradsys --coordinator $OTHER -o json status 2>/dev/null | sed -n 's/.*"leader": "\([a-z0-9]*\):7000".*/\1/p') && [ -n "$NEW" ] && [ "$NEW" != "$LEADER" ]; do
	[ $SECONDS -gt $deadline ] && { echo "no failover within 30s"; exit 1; }
	sleep 0.5
done
echo "new leader: $NEW"
has "$LEASE" tradsys --coordinator $OTHER leases || { echo "lease $LEASE lost in failover"; exit 1; }
call $OTHER "{\"session_id\":\"$SID\",\"component\":\"compose/after-failover\",\"bytes\":1024,\"wait_timeout\":\"5s\"}" AcquireMemory >/dev/null
tradsys --coordinator $OTHER status
echo "== the active service kept its session and lease through the failover"
[ "$(state)" = COMPONENT_STATE_ACTIVE ] || { echo "matching lost its activation: $(state)"; exit 1; }
has ' matching ' tradsys --coordinator $OTHER leases || { echo "matching lease lost"; exit 1; }
has '"quantity": "2"' grpcurl -plaintext -d '{"symbol":"BTCUSDT","depth":5}' $M tradsys.matching.v1.MatchingService/GetOrderBook \
	|| { echo "book lost the resting 2 lots"; exit 1; }
ok=1
echo "compose test: 1 passed, 0 failed"
