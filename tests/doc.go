// Package tests holds what crosses module boundaries (as etcd's tests/
// module does): integration tests of pkg against a real coordinator
// (lazy/, clientpool/, locks/), the lazy runtime's test service
// (lazy/lazytestsvc) and the cross-module benchmarks (cmd/lazybench,
// cmd/lazymanybench). pkg itself imports nothing under services/.
package tests
