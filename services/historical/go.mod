module github.com/tradsys/mesh/services/historical

go 1.26

require go.etcd.io/bbolt v1.4.3

require (
	github.com/tradsys/mesh/pkg v0.0.0-00010101000000-000000000000
	github.com/tradsys/mesh/proto v0.0.0-00010101000000-000000000000
	golang.org/x/sys v0.29.0 // indirect
)

replace github.com/tradsys/mesh/pkg => ../../pkg

replace github.com/tradsys/mesh/proto => ../../proto
