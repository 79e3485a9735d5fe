#!/usr/bin/env bash
# Install the Debian packages drem needs when they are missing (clamd, Chromium for the
# browser tests, HAProxy for several web processes, Node.js/npm for the front-end
# libraries, fonts). Needs root or sudo.
set -euo pipefail
need=()
command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ] || need+=(clamav-daemon clamav)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# HAProxy: the sticky reverse proxy of `drem demo --workers N`, make demo-scaleout, the e2e demo tests
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# PDFs (WeasyPrint): Pango, and a font with Japanese glyphs; pdftotext for the PDF tests
[ -f /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || need+=(fonts-ipafont-gothic)
ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0 || need+=(libpango-1.0-0 libpangoft2-1.0-0)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi
