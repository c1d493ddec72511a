module github.com/tradsys/mesh/services/matching

go 1.26
