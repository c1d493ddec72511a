# etcd, FROM scratch around the static binary built from the etcd Go module
# (services/coordinator/cmd/etcd): nothing is pulled. Laid out like the
# official image (quay.io/coreos/etcd), so ${ETCD_IMAGE} can replace it
# with the same command and healthcheck: /usr/local/bin/etcd, and etcdctl
# answering `etcdctl endpoint health`.
FROM scratch
COPY bin/static/etcd /usr/local/bin/etcd
COPY bin/static/etcd /usr/local/bin/etcdctl
CMD ["/usr/local/bin/etcd"]
