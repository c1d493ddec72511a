# Helpers shared by the deploy test scripts (compose-test, swarm-test,
# fault-test). Sourced; expects to run from the repository root.
export PATH="$PWD/bin/static:$PWD/bin:$PATH"

fail() { echo "FAIL: $*" >&2; exit 1; }

# has TEXT CMD...: CMD succeeds and its output contains TEXT. (Not
# `CMD | grep -q`: under pipefail, grep exiting at the first match makes CMD
# die of SIGPIPE.)
has() { local want=$1; shift; local out; out=$("$@") && [[ "$out" == *"$want"* ]]; }

# compose_isolate_ports FILE: every published port variable of FILE
# (TRADSYS_PORT_*, TRADSYS_ADMIN_PORT_*) set to empty, so docker picks free
# host ports; read them back with `docker-compose port SERVICE PORT`.
compose_isolate_ports() {
	local v
	for v in $(grep -o 'TRADSYS_[A-Z0-9_]*PORT_[A-Z0-9_]*' "$1" | sort -u); do export "$v="; done
}

# market_data: the shared/data folder above the checkout (or
# $TRADSYS_MARKET_DATA_DIR), which the compose and stack files mount read-only.
market_data() {
	if [ -n "${TRADSYS_MARKET_DATA_DIR:-}" ]; then echo "$TRADSYS_MARKET_DATA_DIR"; return; fi
	local d=$PWD
	while [ "$d" != / ]; do
		[ -d "$d/shared/data" ] && { echo "$d/shared/data"; return; }
		d=$(dirname "$d")
	done
	fail "no shared/data above $PWD: set TRADSYS_MARKET_DATA_DIR"
}

# wait_healthy_compose SECONDS [SERVICE...]: every (or each named) container
# of project $P is running and healthy.
wait_healthy_compose() {
	local limit=$1; shift
	local deadline=$((SECONDS + limit)) c s bad
	while :; do
		bad=""
		for c in $(dc ps -q "$@"); do
			s=$(docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")
			[[ "$s" == *" running healthy" ]] || bad="$bad ${s#/}"
		done
		[ -z "$bad" ] && return 0
		[ $SECONDS -gt $deadline ] && { dc ps; fail "not healthy after ${limit}s:$bad"; }
		sleep 1
	done
}

# component_state ADDR COMPONENT: the component's state from the service's
# own LifecycleService.
component_state() {
	grpcurl "${GRPCURL_TLS[@]:--plaintext}" -d "{\"component\":\"$2\"}" "$1" tradsys.lifecycle.v1.LifecycleService/GetState |
		jq -r --arg c "$2" '.components[] | select(.name == $c) | .state // "COMPONENT_STATE_UNSPECIFIED"'
}

# retry SECONDS CMD...: run CMD until it succeeds, at most SECONDS; prints
# how long the failures lasted (the unavailability a client saw) to stderr.
retry() {
	local limit=$1; shift
	local t0=$EPOCHREALTIME deadline=$((SECONDS + limit)) out
	until out=$("$@" 2>&1); do
		[ $SECONDS -gt $deadline ] && { echo "$out" >&2; fail "still failing after ${limit}s: $*"; }
		sleep 0.1
	done
	echo "$out"
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "  (unavailable for %.0f ms)\n", (b - a) * 1000 }' >&2
}

# free_port: a TCP port nobody listens on now (the kernel's pick).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
