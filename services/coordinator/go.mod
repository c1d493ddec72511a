module github.com/tradsys/mesh/services/coordinator

go 1.26
