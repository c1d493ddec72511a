#!/usr/bin/env bash
# The mesh as a Docker Swarm stack (deploy/stack.yml), on a one-node swarm:
#   a test PKI as swarm secrets (mTLS everywhere) -> deploy -> every service
#   converges -> an order end to end through orders (risk, matching) ->
#   a rolling update of connectors (2 replicas, start-first) while a client
#   calls it without pause: no call may fail -> stack removed.
# It inits a swarm when there is none and leaves it at the end (also on
# failure); a swarm it did not create is kept, only its node labels are
# removed. Published ports are free ones picked at start, so a compose stack
# on the default ports does not collide. A leftover stack of an earlier run
# is removed first.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh
STACK=${SWARM_TEST_STACK:-tradsys-swarm-test}
work=$(mktemp -d)
created_swarm=0 labels=""
start=$SECONDS

svc_names() { docker stack services "$STACK" --format '{{.Name}}' 2>/dev/null; }
remove_stack() {
	docker stack rm "$STACK" >/dev/null 2>&1 || true
	# Wait until its tasks and network are gone (a new deploy would race them).
	local deadline=$((SECONDS + 60))
	while docker network ls --format '{{.Name}}' | grep -qx "${STACK}_mesh" ||
		[ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ]; do
		[ $SECONDS -gt $deadline ] && { echo "stack $STACK still present after 60s" >&2; break; }
		sleep 1
	done
	docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK" | xargs -r docker volume rm >/dev/null 2>&1 || true
}
cleanup() {
	local rc=$?
	[ -n "${loop_pid:-}" ] && kill "$loop_pid" 2>/dev/null || true
	if [ "${ok:-0}" != 1 ]; then
		docker stack ps "$STACK" --no-trunc 2>/dev/null | head -40 || true
		for s in $(svc_names); do echo "--- $s"; docker service logs --tail 20 "$s" 2>&1 | tail -20; done
	fi
	remove_stack
	docker image rm tradsys/connectors:swarm-rollout >/dev/null 2>&1 || true
	if [ "$created_swarm" = 1 ]; then
		docker swarm leave --force >/dev/null 2>&1 && echo "left the swarm this test created"
	elif [ -n "$labels" ]; then
		docker node update $(for l in $labels; do echo --label-rm "$l"; done) "$node" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT

echo "== a one-node swarm"
node=$(docker info --format '{{.Swarm.NodeID}}')
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" != active ]; then
	docker swarm init --advertise-addr 127.0.0.1 >/dev/null
	created_swarm=1
	node=$(docker info --format '{{.Swarm.NodeID}}')
	docker node update --label-add tradsys.created-by=swarm-test "$node" >/dev/null
	echo "swarm created (left at the end)"
elif [ "$(docker node inspect self --format '{{index .Spec.Labels "tradsys.created-by"}}')" = swarm-test ]; then
	created_swarm=1 # a leftover of an earlier run of this test: ours to leave
	echo "a swarm left by an earlier run: reused, left at the end"
else
	echo "using the existing swarm (kept at the end)"
fi
remove_stack
for l in tradsys.etcd1 tradsys.etcd2 tradsys.etcd3 tradsys.data; do
	[ -n "$(docker node inspect self --format "{{index .Spec.Labels \"$l\"}}")" ] || labels="$labels $l"
done
docker node update --label-add tradsys.etcd1=true --label-add tradsys.etcd2=true --label-add tradsys.etcd3=true \
	--label-add tradsys.data=true "$node" >/dev/null

echo "== test PKI (swarm secrets), free ports, deploy"
bash deploy/pki.sh "$work/pki" >/dev/null
export TRADSYS_PKI_DIR=$work/pki TRADSYS_MARKET_DATA_DIR=$(market_data)
for v in $(grep -o 'TRADSYS_SWARM_PORT_[A-Z0-9_]*' deploy/stack.yml | sort -u); do export "$v=$(free_port)"; done
GRPCURL_TLS=(-cacert "$work/pki/ca.crt" -cert "$work/pki/operator.crt" -key "$work/pki/operator.key")
TLS=(--tls-ca "$work/pki/ca.crt" --tls-cert "$work/pki/operator.crt" --tls-key "$work/pki/operator.key")
t0=$SECONDS
docker stack deploy --resolve-image never -c deploy/stack.yml "$STACK"

converged() {
	local line bad=""
	while read -r name replicas; do
		[ "${replicas%%/*}" = "${replicas##*/}" ] || bad="$bad $name=$replicas"
	done < <(docker stack services "$STACK" --format '{{.Name}} {{.Replicas}}')
	[ -z "$bad" ] || { echo "$bad"; return 1; }
}
deadline=$((SECONDS + 240))
until out=$(converged); do
	[ $SECONDS -gt $deadline ] && fail "not converged after 240s:$out"
	sleep 2
done
docker stack services "$STACK"
echo "converged in $((SECONDS - t0))s"

C=127.0.0.1:$TRADSYS_SWARM_PORT_COORDINATOR1 O=127.0.0.1:$TRADSYS_SWARM_PORT_ORDERS
g() { grpcurl "${GRPCURL_TLS[@]}" "$@"; }
echo "== plaintext is refused: mTLS is on"
! grpcurl -plaintext -max-time 3 "$O" list >/dev/null 2>&1 || fail "orders answered a plaintext call"
retry 30 tradsys "${TLS[@]}" --coordinator "$C" status # the coordinators may still be restarting after the deploy

echo "== each replica grants: the follower forwards to the leader with the caller's identity"
for P in "$TRADSYS_SWARM_PORT_COORDINATOR1" "$TRADSYS_SWARM_PORT_COORDINATOR2"; do
	coord() { g -d "$1" "127.0.0.1:$P" "tradsys.coordinator.v1.CoordinatorService/$2"; }
	SID=$(retry 30 coord '{"owner":"swarm-test","ttl":"60s"}' CreateSession 2>/dev/null | jq -r .sessionId)
	[ -n "$SID" ] && [ "$SID" != null ] || fail "no session through 127.0.0.1:$P"
	GRANT=$(coord "{\"session_id\":\"$SID\",\"component\":\"swarm/test\",\"bytes\":1048576}" AcquireMemory 2>&1) ||
		fail "no memory grant through 127.0.0.1:$P: $GRANT"
	coord "{\"session_id\":\"$SID\"}" CloseSession >/dev/null
done

echo "== an order end to end: orders -> risk -> matching, on the published port"
ord() { retry 60 g -d "$2" "$1" "tradsys.orders.v1.OrderService/$3"; }
ord "$O" '{"instrument":{"symbol":"ETHUSDT","tick_size":"0.01","lot_size":"0.001"}}' CreateInstrument >/dev/null
ord "$O" '{"account":"alice","client_order_id":"s1","symbol":"ETHUSDT","side":"SIDE_SELL","type":"ORDER_TYPE_LIMIT","price":"2500.00","quantity":"2"}' SubmitOrder >/dev/null
OUT=$(ord "$O" '{"account":"bob","client_order_id":"b1","symbol":"ETHUSDT","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","price":"2500.00","quantity":"2"}' SubmitOrder)
[ "$(jq -r .order.status <<<"$OUT")" = ORDER_STATUS_FILLED ] || fail "the crossing order did not fill: $OUT"
echo "order $(jq -r .order.orderId <<<"$OUT") filled at $(jq -r .order.averageFillPrice <<<"$OUT")"
has ' orders ' tradsys "${TLS[@]}" --coordinator "$C" leases || fail "orders holds no lease"

echo "== rolling update of connectors (2 replicas, start-first) under calls"
# connectors is internal (no published port): the calls come from inside the
# mesh, from the orders container, with its certificate, resolving
# connectors by swarm's DNS as every service does.
FROM=$(docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_orders" | head -1)
[ -n "$FROM" ] || fail "no orders container to call from"
call() { docker exec "$FROM" /tradsys probe --timeout 5s --tls-cert=/run/secrets/tls.crt --tls-key=/run/secrets/tls.key \
	--tls-ca=/run/secrets/ca.crt connectors:7105 >/dev/null 2>>"$work/calls.err"; }
retry 30 call >/dev/null
: >"$work/calls.err"
(
	n=0 f=0
	while [ ! -f "$work/stop" ]; do
		if call; then n=$((n + 1)); else f=$((f + 1)); fi
		echo "$n $f" >"$work/calls"
	done
) &
loop_pid=$!
docker tag tradsys/connectors:dev tradsys/connectors:swarm-rollout
t0=$SECONDS
docker service update --quiet --detach=false --no-resolve-image --image tradsys/connectors:swarm-rollout "${STACK}_connectors" >/dev/null
# (--detach=false returns when the tasks run; the update ends after its monitor period.)
deadline=$((SECONDS + 60))
while state=$(docker service inspect "${STACK}_connectors" --format '{{.UpdateStatus.State}} {{.UpdateStatus.Message}}') && [[ "$state" == updating* ]]; do
	[ $SECONDS -gt $deadline ] && break
	sleep 1
done
touch "$work/stop"
wait "$loop_pid"
loop_pid=""
read -r calls failed <"$work/calls"
[[ "$state" == completed* ]] || fail "update did not complete: $state"
has swarm-rollout docker service inspect "${STACK}_connectors" --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' || fail "image not rolled"
echo "rolling update: $((SECONDS - t0))s, $calls calls, $failed failed"
[ "$failed" = 0 ] || { sort "$work/calls.err" | uniq -c; fail "$failed calls failed during the rolling update"; }
[ "$calls" -gt 0 ] || fail "no call made during the update"

ok=1
echo "swarm test: passed in $((SECONDS - start))s"
