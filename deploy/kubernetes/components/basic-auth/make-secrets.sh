#!/usr/bin/env bash
# Writes the files of the two Secrets components/basic-auth needs into a new directory DIR, and
# prints the kubectl commands that create the Secrets from them. Run it outside this repository:
# DIR holds a private key and a password.
#
#   make-secrets.sh DIR [SERVER_NAME]
#
#   conntrack-exporter-web (the exporter mounts it)
#     web-config.yml  exporter-toolkit's web config: TLS 1.3 with tls.crt/tls.key, and the user
#                     prometheus with the bcrypt hash (cost 10) of the password
#     tls.crt         server certificate for SERVER_NAME (default
#     tls.key         conntrack-exporter.conntrack-exporter.svc, the ServiceMonitor's serverName)
#   conntrack-exporter-scrape (the Prometheus operator reads it for the ServiceMonitor)
#     username, password   the password: 32 random bytes, base64, no newline
#     ca.crt               the CA that signed tls.crt
#
# The CA exists for this certificate only: its key is deleted once it has signed, so nothing
# else can ever be issued under it. To renew (tls.crt lasts 825 days), run this again and
# replace both Secrets. Needs openssl, and htpasswd (apache2-utils) or node with bcryptjs (this
# repository after `npm ci`).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [SERVER_NAME]" >&2
  exit 2
fi
dir=$1
name=${2:-conntrack-exporter.conntrack-exporter.svc}
user=prometheus
repo=$(cd "$(dirname "$0")/../../../.." && pwd)

umask 077
mkdir "$dir" # fails if it exists: never overwrite keys
cd "$dir"

ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -days 3650 -subj '/CN=conntrack-exporter scrape CA' \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req "${ec[@]}" -subj "/CN=$name" -keyout tls.key -out tls.csr 2>/dev/null
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' "$name" >tls.ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
  -extfile tls.ext -out tls.crt 2>/dev/null
rm ca.key ca.srl tls.csr tls.ext

openssl rand -base64 32 | tr -d '\n' >password
printf %s "$user" >username
if command -v htpasswd >/dev/null; then
  hash=$(htpasswd -niBC 10 "$user" <password | cut -d: -f2-)
else
  hash=$(NODE_PATH="$repo/node_modules" node -e \
    "process.stdout.write(require('bcryptjs').hashSync(require('fs').readFileSync('password', 'utf8'), 10))")
fi
cat >web-config.yml <<EOF
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
  min_version: TLS13
basic_auth_users:
  $user: '$hash'
EOF

cat <<EOF
Wrote $(pwd): web-config.yml tls.crt tls.key (Secret conntrack-exporter-web),
username password ca.crt (Secret conntrack-exporter-scrape). Create them with:

kubectl create namespace conntrack-exporter --dry-run=client -o yaml | kubectl apply -f -
kubectl -n conntrack-exporter create secret generic conntrack-exporter-web \\
  --from-file=$(pwd)/web-config.yml --from-file=$(pwd)/tls.crt --from-file=$(pwd)/tls.key
kubectl -n conntrack-exporter create secret generic conntrack-exporter-scrape \\
  --from-file=$(pwd)/username --from-file=$(pwd)/password --from-file=$(pwd)/ca.crt
EOF
