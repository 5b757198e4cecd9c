#!/bin/sh
# The config file lives on the data volume. On a fleet box it starts empty: the site's
# configuration arrives as balena device variables (SUNBOX_<SECTION>__<KEY>, pushed by
# sunbox-fleet) and is validated exactly like a file. A file a technician writes there
# (commissioning wizard) is kept; variables still override it.
set -eu
data=${SUNBOX_DATA_MOUNT:-/data}
mkdir -p "$data"
if [ ! -e "$data/sunbox.toml" ]; then
    cat > "$data/sunbox.toml" <<'TOML'
# Sunbox site config. Empty on purpose on a balena fleet box: the configuration comes from
# device variables SUNBOX_<SECTION>__<KEY> (see `sunbox fleet env`).
TOML
fi
exec "$@"
