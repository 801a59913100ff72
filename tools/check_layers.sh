#!/usr/bin/env bash
# check_layers.sh — the harness's includes only point down: io/ includes io/ (and the ABI),
# engine/ includes engine/ and io/, cli/ anything. Exit 1 naming each include that points up.
set -euo pipefail
cd "$(dirname "$0")/../harness"
allowed_io="io abi"
allowed_engine="engine io abi"
bad=0
for layer in io engine; do
  var="allowed_$layer"
  for f in "$layer"/*.c "$layer"/*.h; do
    while IFS= read -r inc; do
      found=""
      for dir in cli engine io abi; do
        [ -f "$dir/$inc" ] && found=$dir
      done
      [ -z "$found" ] && continue # a generated or system header
      case " ${!var} " in
        *" $found "*) ;;
        *) echo "check_layers: $f includes $found/$inc: $layer/ may include only ${!var// /, }/"
           bad=1 ;;
      esac
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done
[ "$bad" -eq 0 ] && echo "check_layers: includes point down (cli -> engine -> io; abi apart)"
exit "$bad"
