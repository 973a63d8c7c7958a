#!/bin/sh
# The nightly brief from a feed list: every feed in $POLYBRIEF_FEEDS (default
# /etc/polybrief/feeds.txt, format in feeds.example) plus any arguments given, archived with
# a "Since the last brief" section, articles of the last day only. Used by the systemd
# service and the cron line in this folder.
#
#   polybrief-feeds.sh [more inputs or flags...]
#
# Exit codes are polybrief's: 3 means the brief was written and some feeds or items failed
# (each is named in the brief's Skipped section and the log).
set -eu
feeds=${POLYBRIEF_FEEDS:-/etc/polybrief/feeds.txt}
archive=${POLYBRIEF_ARCHIVE:-/srv/briefs}
since=${POLYBRIEF_SINCE:-24h}
[ -r "$feeds" ] || { echo "polybrief-feeds: cannot read the feed list $feeds (set POLYBRIEF_FEEDS)" >&2; exit 2; }
# Comments and blank lines out; URLs hold no spaces, so word splitting is what we want.
# shellcheck disable=SC2046
set -- $(sed -e 's/#.*//' "$feeds") "$@"
# No --offline: feeds need the network. Models still come from the cache once fetched
# (`polybrief models fetch`), and an unchanged feed costs one conditional request.
exec polybrief run "$@" --archive "$archive" --since "$since" -q
