#!/bin/sh
. /etc/app/config.env
echo "worker started with ${WORKERS} workers"
