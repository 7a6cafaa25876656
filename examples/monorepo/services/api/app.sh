#!/bin/sh
. /etc/app/config.env
echo "api listening on port ${API_PORT}"
