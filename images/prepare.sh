#!/bin/sh
# Stage what the core image needs inside images/core: balena builds from the images/ folder
# only, while the package and its register maps live at the repository root.
#   images/prepare.sh && balena push <org>/<fleet> --source images
# The wheel is built from a temporary copy so the checkout gets no build/ directory.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
python=${PYTHON:-python3}
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
(cd "$repo" && tar cf - --exclude=__pycache__ pyproject.toml $(ls README* 2>/dev/null) appliance provisioning ui) \
    | (cd "$src" && tar xf -)
rm -rf "$here/core/wheels" "$here/core/field_data"
mkdir -p "$here/core/wheels" "$here/core/field_data"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$here/core/wheels" "$src"
cp -R "$repo/field_data/modbus" "$here/core/field_data/modbus"
cp "$repo/field_data/SOURCES.md" "$here/core/field_data/SOURCES.md"
echo "staged $(ls "$here/core/wheels") and field_data/modbus in $here/core"
