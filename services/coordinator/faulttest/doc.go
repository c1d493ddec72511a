// Package faulttest holds the coordinator's fault tests: real etcd member
// processes that are paused (SIGSTOP), killed and restarted, several
// coordinator replicas killed under load, and client histories checked
// afterwards (budget at every etcd revision, lock linearizability).
package faulttest
