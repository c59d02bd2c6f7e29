#!/usr/bin/env bash
# scripts/install_dicom3tools.sh
#
# Install dciodvfy (David Clunie's DICOM validator, Debian package dicom3tools) when missing, for
# tests/test_denoise.py, which checks that our synthetic NM studies and `spectbone denoise` output
# validate. Same pattern as scripts/slurm_local.sh: root and apt-get (Debian), apt-get update first.
# Exit codes: 0 installed (or already there), 3 cannot install (not root, no apt-get, no mirror).
set -euo pipefail

log() { echo "install_dicom3tools: $*" >&2; }
die() { local rc="$1"; shift; log "ERROR: $*"; exit "$rc"; }

command -v dciodvfy >/dev/null && exit 0
[[ "$(id -u)" == 0 ]] || die 3 "dciodvfy is missing and installing dicom3tools needs root"
command -v apt-get >/dev/null || die 3 "dciodvfy is missing and apt-get is not available: install dicom3tools by hand"
LOG="${TMPDIR:-/tmp}/install_dicom3tools.log"
log "installing dicom3tools (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >"$LOG" 2>&1 || die 3 "apt-get update failed (no network/package mirror?); see $LOG"
apt-get install -y -qq --no-install-recommends dicom3tools >>"$LOG" 2>&1 ||
    die 3 "apt-get install dicom3tools failed; see $LOG"
command -v dciodvfy >/dev/null || die 3 "dicom3tools installed but dciodvfy is still missing"
