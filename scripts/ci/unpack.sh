#!/usr/bin/env bash
# Checks one release archive of dist/release against SHA256SUMS and unpacks its binary into DEST
# (the release workflow's smoke jobs).   usage: scripts/ci/unpack.sh TARGET DEST
set -euo pipefail
target="$1"
dest="$2"
dir=dist/release
case "$target" in
  windows-*) archive="claude-openai-proxy-$target.zip" ;;
  *) archive="claude-openai-proxy-$target.tar.gz" ;;
esac
line="$(grep "  $archive\$" "$dir/SHA256SUMS")"
if command -v sha256sum >/dev/null; then
  (cd "$dir" && echo "$line" | sha256sum -c -)
else
  (cd "$dir" && echo "$line" | shasum -a 256 -c -)
fi
mkdir -p "$dest"
case "$archive" in
  *.zip) unzip -o -q "$dir/$archive" -d "$dest" ;;
  *) tar -xzf "$dir/$archive" -C "$dest" ;;
esac
ls -l "$dest"
