#!/usr/bin/env bash
# Builds the tiny sandbox image without any registry: Debian's static busybox
# with one symlink per applet, the host's curl with the shared libraries it loads (busybox has
# no HTTP client that speaks over a Unix socket, and a job reaches its node's model only through
# one: the inference proxy), a passwd with root and nobody (the sandbox user, 65534), /tmp,
# /workspace and /job, brought in with `docker import`.
#
#   build/sandbox-image.sh [IMAGE]        IMAGE defaults to $CYNODE_SANDBOX_IMAGE, else cynode-sandbox:latest
#   CONTAINER_CLI=podman build/sandbox-image.sh
#   CURL=/path/to/curl build/sandbox-image.sh   (default: the curl on PATH)
#
# Idempotent: the image carries a hash of this recipe and of the binaries and libraries it copies, and an image
# that already has the same hash is left alone, so tests and CI can call this on every run.
set -euo pipefail

image=${1:-${CYNODE_SANDBOX_IMAGE:-cynode-sandbox:latest}}
cli=${CONTAINER_CLI:-docker}
busybox=${BUSYBOX:-/bin/busybox}
curl=${CURL:-$(command -v curl || true)}
recipe_label=io.cynode.sandbox.recipe

die() {
  printf 'sandbox-image: %s\n' "$*" >&2
  exit 1
}

command -v "$cli" >/dev/null || die "'$cli' is not installed (CONTAINER_CLI=podman selects Podman)"
[[ -x "$busybox" ]] || die "$busybox not found: install Debian's busybox-static (apt-get install busybox-static)"
# The image has no libc: a dynamically linked busybox (Debian's plain `busybox` package) would
# not even start in it. ldd fails on static binaries, which is what we want here.
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked: install Debian's busybox-static instead of busybox"
fi
[[ -n "$curl" && -x "$curl" ]] || die "curl not found: install Debian's curl (apt-get install curl)"
# The libraries curl loads, and the loader itself: the image has no libc of its own.
mapfile -t curl_libs < <(ldd "$curl" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
((${#curl_libs[@]} > 0)) || die "ldd found no libraries for $curl"
"$cli" info >/dev/null 2>&1 || die "'$cli info' fails: is the container engine running?"

# Parallel test workers may call this at the same moment; one builds, the others then find it done.
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/cynode-sandbox-image.lock"
  flock 9
fi

recipe=$(cat "${BASH_SOURCE[0]}" "$busybox" "$curl" "${curl_libs[@]}" | sha256sum | cut -c1-16)
current=$("$cli" image inspect --format "{{ index .Config.Labels \"$recipe_label\" }}" "$image" 2>/dev/null || true)
if [[ "$current" == "$recipe" ]]; then
  echo "sandbox image $image is up to date (recipe $recipe)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,usr/bin,etc,root,workspace,job,tmp}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [[ "$applet" == busybox || -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done
# curl in /bin (PATH=/bin); each library where ldd found it, so the loader's default paths find it.
cp -L "$curl" "$root/bin/curl"
for lib in "${curl_libs[@]}"; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# Scripts commonly start with #!/usr/bin/env sh.
ln -s ../../bin/busybox "$root/usr/bin/env"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

# Root-owned files whoever builds (rootless Podman maps the builder's uid otherwise).
tar -C "$root" --owner=0 --group=0 --numeric-owner -c . |
  "$cli" import -c 'ENV PATH=/bin' -c 'WORKDIR /workspace' -c "LABEL $recipe_label=$recipe" - "$image" >/dev/null
echo "built sandbox image $image (recipe $recipe)"
