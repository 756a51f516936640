# shellcheck shell=bash
# log/die for the scripts: one line each on stderr, prefixed with the script's name, so stdout
# stays free for what a script prints (an image name, say). Sourced, not run.
LOG_PREFIX="${LOG_PREFIX:-$(basename "$0" .sh)}"
log() { printf '%s: %s\n' "$LOG_PREFIX" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$LOG_PREFIX" "$*" >&2
	exit 1
}
