# Mutual TLS: libmicrohttpd only asks for a client certificate, so the
# daemon must refuse, with 401, every request that lacks a certificate
# verified under the client CA with the clientAuth purpose, or whose
# certificate maps to no principal.
. "$(dirname "$0")/lib.sh"

start_daemon || { not_ok "daemon starts"; finish; exit 1; }

expect_eq "no client certificate: 401" "$(api - GET /v1/keys)" 401
expect_eq "401 is a problem document" "$(jbody .status)" 401
expect_eq "no client certificate cannot create requests" \
    "$(api - POST /v1/requests -H 'Content-Type: application/json' --data '{}')" 401

# A certificate from another CA, with the same subject as a real principal.
d="$T_DIR/evil"; mkdir -p "$d"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=evil CA" -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/ci.key" -out "$d/ci.csr" -subj "/CN=ci" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' >"$d/ext"
openssl x509 -req -in "$d/ci.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
    -CAcreateserial -out "$d/ci.pem" -days 2 -extfile "$d/ext" 2>/dev/null
st=$(curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" --cert "$d/ci.pem" \
    --key "$d/ci.key" -o "$T_DIR/body" -w '%{http_code}' "$URL/v1/keys")
expect_eq "a certificate from another CA named 'ci': 401" "$st" 401

# A certificate from the right CA for a name the policy does not know.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/mallory.key" -out "$d/mallory.csr" -subj "/CN=mallory" 2>/dev/null
openssl x509 -req -in "$d/mallory.csr" -CA "$DEV/tls/ca.pem" \
    -CAkey "$DEV/tls/ca.key" -CAcreateserial -out "$d/mallory.pem" -days 2 \
    -extfile "$d/ext" 2>/dev/null
st=$(curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" --cert "$d/mallory.pem" \
    --key "$d/mallory.key" -o "$T_DIR/body" -w '%{http_code}' "$URL/v1/keys")
expect_eq "a certificate that maps to no principal: 401" "$st" 401
check "the 401 says why" grep -q 'maps to no principal' "$T_DIR/body"

# The right CA and name, but made for servers (no clientAuth purpose).
printf 'extendedKeyUsage=serverAuth\n' >"$d/ext-server"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/ci-srv.key" -out "$d/ci-srv.csr" -subj "/CN=ci" 2>/dev/null
openssl x509 -req -in "$d/ci-srv.csr" -CA "$DEV/tls/ca.pem" \
    -CAkey "$DEV/tls/ca.key" -CAcreateserial -out "$d/ci-srv.pem" -days 2 \
    -extfile "$d/ext-server" 2>/dev/null
st=$(curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" --cert "$d/ci-srv.pem" \
    --key "$d/ci-srv.key" -o "$T_DIR/body" -w '%{http_code}' "$URL/v1/keys")
expect_eq "a server-only certificate as client: 401" "$st" 401

# An expired certificate from the right CA (openssl ca sets the dates).
mkdir -p "$d/ca"; : >"$d/ca/index.txt"; echo 01 >"$d/ca/serial"
cat >"$d/ca.cnf" <<CNF
[ca]
default_ca = dev
[dev]
dir = $d/ca
database = $d/ca/index.txt
serial = $d/ca/serial
new_certs_dir = $d/ca
certificate = $DEV/tls/ca.pem
private_key = $DEV/tls/ca.key
default_md = sha256
policy = any
x509_extensions = ext
[any]
commonName = supplied
[ext]
extendedKeyUsage = clientAuth
CNF
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$d/old.key" -out "$d/old.csr" -subj "/CN=ci" 2>/dev/null
openssl ca -batch -config "$d/ca.cnf" -in "$d/old.csr" -out "$d/old.pem" \
    -startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1
check "an expired client certificate was made" test -s "$d/old.pem"
st=$(curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" --cert "$d/old.pem" \
    --key "$d/old.key" -o "$T_DIR/body" -w '%{http_code}' "$URL/v1/keys")
expect_eq "an expired client certificate: 401" "$st" 401

expect_eq "the real ci certificate: 200" "$(api ci GET /v1/keys)" 200

# The certificate is verified once per connection, not once per request:
# three requests on one kept-alive connection cost one verification, and
# each still sees the caller (and a refused certificate stays refused).
verifications() {
	curl -sS --max-time 10 --cacert "$DEV/tls/ca.pem" "$URL/metrics" |
	    awk '$1 == "signgate_tls_client_verifications_total" { print $2 }'
}
v0=$(verifications)
keepalive=$(curl -sS --max-time 20 --cacert "$DEV/tls/ca.pem" \
    --cert "$DEV/tls/alice.pem" --key "$DEV/tls/alice.key" \
    -o "$T_DIR/k1" -o "$T_DIR/k2" -o "$T_DIR/k3" \
    -w '%{http_code} %{num_connects} ' "$URL/v1/keys" "$URL/v1/keys" \
    "$URL/v1/keys")
v1=$(verifications)
expect_eq "three requests on one kept-alive connection" "$keepalive" \
    "200 1 200 0 200 0 "
expect_eq "... verify the certificate once" "$((v1 - v0))" 1
expect_eq "... and each knows its caller" \
    "$(jq -r .principal "$T_DIR/k1" "$T_DIR/k2" "$T_DIR/k3" | tr '\n' ' ')" \
    "alice alice alice "
out=$(curl -sS --max-time 20 --cacert "$DEV/tls/ca.pem" \
    --cert "$d/ci.pem" --key "$d/ci.key" -o /dev/null -o /dev/null \
    -w '%{http_code} %{num_connects}\n' "$URL/v1/keys" "$URL/v1/keys")
v2=$(verifications)
expect_eq "a refused certificate, twice: 401 both times" \
    "$(echo "$out" | awk '{ printf "%s ", $1 }')" "401 401 "
expect_eq "... verified on each connection it came on" "$((v2 - v1))" \
    "$(echo "$out" | awk '{ n += $2 } END { print n }')"

# TLS 1.1 and below are refused at the handshake.
check "TLS 1.1 is refused" bash -c "! curl -sS --max-time 10 --cacert '$DEV/tls/ca.pem' --tls-max 1.1 '$URL/v1/keys' -o /dev/null"

finish
