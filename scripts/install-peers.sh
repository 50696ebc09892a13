#!/usr/bin/env bash
# Installs the peer programs the test suite talks to, from Debian's
# packages. Run as root (CI runs as root); with sudo otherwise. Programs
# already present are left alone, so a second run is quick. With --bench,
# it also installs the peers that only the benchmarks under bench/ run.
set -euo pipefail

bench=false
for argument in "$@"; do
  case $argument in
    --bench) bench=true ;;
    *)
      echo "install-peers: unknown argument $argument (expected --bench)" >&2
      exit 2
      ;;
  esac
done

# Program to check for, and the Debian package that provides it.
peers=(
  "openssl:openssl"
  "certtool:gnutls-bin"
  "pg_ctlcluster:postgresql"
  "ssh-keygen:openssh-client"
  "ssh:openssh-client"
  "sshd:openssh-server"
  "pykmip-server:python3-pykmip"
  "certbot:certbot"
  "lego:lego"
  "pebble:pebble"
  "curl:curl"
  "wg:wireguard-tools"
  "wireguard-go:wireguard-go"
  "ip:iproute2"
  "ping:iputils-ping"
  "wpa_passphrase:wpasupplicant"
  "hostapd:hostapd"
  "eapol_test:eapoltest"
  "freeradius:freeradius"
  "swanctl:strongswan-swanctl"
  "/usr/lib/ipsec/charon:strongswan-charon"
  "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so:libcharon-extra-plugins"
  "softhsm2-util:softhsm2"
  "pkcs11-tool:opensc"
)
if $bench; then
  # bench/pki.ts signs beside cfssl.
  peers+=("cfssl:golang-cfssl")
fi

missing=()
for entry in "${peers[@]}"; do
  program=${entry%%:*}
  package=${entry#*:}
  # An entry that starts with / names a file (a daemon or a plugin) rather than a command.
  if [[ $program == /* ]]; then
    [ -e "$program" ] || missing+=("$package")
  elif ! command -v "$program" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: every peer program is installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-peers: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
