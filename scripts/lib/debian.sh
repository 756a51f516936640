# shellcheck shell=bash
# Shared by the scripts that build images from Debian packages when no registry can be pulled
# (pg-image.sh, runtime-base-image.sh). Sourced, not run, after lib/log.sh.
# The mirror is read from the host's own apt configuration at run time, so no host name is
# written anywhere in the repository or the images.

# Installs mmdebstrap when missing (as root; otherwise says how).
ensure_mmdebstrap() {
	command -v mmdebstrap >/dev/null 2>&1 && return 0
	[ "$(id -u)" = "0" ] || die "mmdebstrap is missing; install it (apt-get install -y mmdebstrap)"
	log "installing mmdebstrap"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q mmdebstrap >&2; then
		if ! { apt-get update -q >&2 && apt-get install -y -q mmdebstrap >&2; }; then
			die "could not install mmdebstrap"
		fi
	fi
}

# Print "URI SUITE" of the host's main Debian apt source (not -security or
# -updates): deb822 *.sources first, then classic one-line *.list files.
host_apt_source() {
	local f
	local -a files=()
	[ -f /etc/apt/sources.list.d/debian.sources ] && files+=(/etc/apt/sources.list.d/debian.sources)
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && [ "$f" != /etc/apt/sources.list.d/debian.sources ] && files+=("$f")
	done
	if [ "${#files[@]}" -gt 0 ]; then
		awk '
			function flush() {
				if (!found && types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "") {
					n = split(suites, s, " ")
					for (i = 1; i <= n; i++) if (s[i] !~ /[-\/]/) {
						split(uris, u, " "); print u[1], s[i]; found = 1; break
					}
				}
				types = uris = suites = enabled = ""
			}
			FNR == 1 && NR > 1 { flush() }
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				line = $0; key = tolower(line); sub(/:.*/, "", key)
				val = line; sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { flush() }
		' "${files[@]}" 2>/dev/null | head -n 1 | grep . && return 0
	fi
	files=()
	[ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] && files+=("$f")
	done
	[ "${#files[@]}" -gt 0 ] || return 1
	awk '
		$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) !~ /[-\/]/) { print $i, $(i + 1); exit }
		}
	' "${files[@]}" | grep .
}

# Sets MIRROR and HOST_SUITE from the host's apt sources, or dies naming where it looked.
read_host_apt_source() {
	read -r MIRROR HOST_SUITE < <(host_apt_source || :) || :
	if [ -z "${MIRROR:-}" ] || [ -z "${HOST_SUITE:-}" ]; then
		die "could not read a Debian mirror URI from /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
	fi
}
