#!/usr/bin/env bash
# pki.sh DIR [NAME...]: a test PKI for the mesh's mTLS, as deploy/stack.yml
# expects it: DIR/ca.crt, and for each service (default: every service of
# the stack, plus "operator" for the CLI and grpcurl) DIR/NAME.crt and
# DIR/NAME.key, EC P-256, signed by the CA, usable as server and client
# certificate (CN = NAME, the identity; SANs NAME, localhost, 127.0.0.1, so
# healthchecks inside a container verify too). Also DIR/api-keys, the
# gateway's key file with one fresh key for account 1.
# The same shape as pkg/proctest.PKI, which the Go tests use; for production
# bring certificates from your own CA with the same file names.
set -euo pipefail
dir=${1:?usage: pki.sh DIR [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(coordinator1 coordinator2 matching historical orders risk connectors gateway strategy operator)
mkdir -p "$dir"
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }
if [ ! -f ca.crt ]; then
	ossl ecparam -name prime256v1 -genkey -noout -out ca.key
	ossl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=tradsys-test-ca" -out ca.crt \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,digitalSignature"
fi
for n in "${names[@]}"; do
	ossl ecparam -name prime256v1 -genkey -noout -out "$n.key"
	ossl req -new -key "$n.key" -subj "/CN=$n" -out "$n.csr"
	printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' "$n" >"$n.ext"
	ossl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -sha256 -extfile "$n.ext" -out "$n.crt"
	rm -f "$n.csr" "$n.ext"
done
chmod 600 ./*.key
[ -f api-keys ] || echo "$(openssl rand -hex 24) 1 name=swarm" >api-keys
echo "PKI in $PWD: ca.crt and ${names[*]}"
