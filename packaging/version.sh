#!/bin/sh
# Prints the Debian version of this checkout, from `git describe`:
#   v1.2.3              -> 1.2.3
#   v1.2.3-4-gabc1234   -> 1.2.3+git4.abc1234      (sorts after 1.2.3, before 1.2.4)
#   no tag: abc1234     -> 0.0.0+git80.abc1234     (80 = commits on HEAD, so newer sorts higher)
#   a dirty tree adds ".dirty". A Debian version must start with a digit and hold only
#   [A-Za-z0-9.+~-]; anything else in a tag becomes ".".
set -eu
d=$(git describe --tags --always --dirty --match 'v[0-9]*' 2>/dev/null || echo 0000000)
dirty=""
case "$d" in *-dirty) dirty=".dirty"; d=${d%-dirty} ;; esac
case "$d" in
v[0-9]*-[0-9]*-g[0-9a-f]*)
	base=${d%-*-g*}; rest=${d#"$base"-}; n=${rest%%-*}; h=${rest#*-g}
	v="${base#v}+git$n.$h" ;;
v[0-9]*) v=${d#v} ;;
*) v="0.0.0+git$(git rev-list --count HEAD 2>/dev/null || echo 0).$d" ;;
esac
printf '%s%s\n' "$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~\n-' '.')" "$dirty"
