#!/usr/bin/env bash
# Faults on the containerised mesh (3 etcd members, 2 coordinators,
# matching; its own compose project on free ports), checked against the
# recorded client histories: TestDockerMeshFaults in
# services/coordinator/faulttest (it reuses that package's lock model and
# budget checker). Each fault prints a FIGURE line. A failing run's
# histories are kept in the directory printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh
P=${FAULT_TEST_PROJECT:-tradsys-fault-test}
dc() { docker-compose -p "$P" "$@"; }
# Free ports fixed for the run (not docker's pick, which changes when a
# killed container is started again).
for v in $(grep -o 'TRADSYS_[A-Z0-9_]*PORT_[A-Z0-9_]*' docker-compose.yml | sort -u); do export "$v=$(free_port)"; done
export TRADSYS_MARKET_DATA_DIR=$(market_data)
# The lease history is recorded through etcd watches that resume after an
# etcd member is killed: keep etcd's whole history for them (as the
# in-process fault test does), not the coordinators' default compaction.
export TRADSYS_COMPACT_RETAIN=-1
artifacts=$(mktemp -d "${TMPDIR:-/tmp}/tradsys-fault-histories-XXXXXX")
cleanup() {
	local rc=$?
	dc unpause >/dev/null 2>&1 || true
	[ $rc = 0 ] || dc logs --tail=5 coordinator1 coordinator2 matching || true
	dc down -v --remove-orphans >/dev/null 2>&1 || true
	if [ $rc = 0 ]; then rm -rf "$artifacts"; else echo "histories of the failing run: $artifacts"; fi
	exit $rc
}
trap cleanup EXIT
start=$SECONDS
dc down -v --remove-orphans >/dev/null 2>&1 || true
dc up -d --no-build etcd1 etcd2 etcd3 coordinator1 coordinator2 matching
wait_healthy_compose 180
export TRADSYS_DOCKER_FAULTS_PROJECT=$P TRADSYS_DOCKER_FAULTS_ARTIFACTS=$artifacts
export TRADSYS_DOCKER_FAULTS_COORDINATORS="$(dc port coordinator1 7000),$(dc port coordinator2 7000)"
export TRADSYS_DOCKER_FAULTS_ETCD="$(dc port etcd1 2379),$(dc port etcd2 2379),$(dc port etcd3 2379)"
export TRADSYS_DOCKER_FAULTS_MATCHING=$(dc port matching 7103)
export TRADSYS_DOCKER_FAULTS_ADMIN="$(dc port coordinator1 9000),$(dc port coordinator2 9000)"
(cd services/coordinator && go test -count=1 -v -run '^TestDockerMeshFaults$' -timeout 5m ./faulttest/) 2>&1 | grep -E 'FIGURE|^(=== RUN|--- |PASS|FAIL|ok)|_test.go'
echo "fault test: passed in $((SECONDS - start))s"
