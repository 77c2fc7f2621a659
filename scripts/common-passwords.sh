#!/usr/bin/env bash
# Regenerates services/inbox/internal/password/common-passwords.txt: the
# first 10,000 distinct passwords (lowercased) of zxcvbn's frequency list,
# as github.com/trustelem/zxcvbn (MIT) ships it, fetched through the Go
# module proxy.
set -euo pipefail
version=v1.0.1
dir=$(go mod download -json "github.com/trustelem/zxcvbn@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
out=$(dirname "$0")/../services/inbox/internal/password/common-passwords.txt
{
	cat <<HEADER
# The 10,000 most common passwords, most common first, lowercase; one a line.
#
# Source: the first 10,000 entries of data/passwords.txt of
# github.com/trustelem/zxcvbn $version (MIT licence, Copyright (c) 2018
# Vincent Vanackere and Trustelem; see common-passwords.LICENSE), the Go
# port of Dropbox's zxcvbn 4.4.2 (MIT licence), whose password list counts
# the passwords of Xato's ten million password corpus. Regenerate with
# scripts/common-passwords.sh.
HEADER
	awk 'NF { w = tolower($1); if (!(w in seen)) { seen[w] = 1; print w; if (++n == 10000) exit } }' "$dir/data/passwords.txt"
} >"$out"
cp "$dir/LICENSE.txt" "$(dirname "$out")/common-passwords.LICENSE"
chmod 644 "$(dirname "$out")/common-passwords.LICENSE"
