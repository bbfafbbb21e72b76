// Preloaded into Azurite's queue service (node --require) by local_runner/azurite.py: sets how
// often the service sweeps the extents of deleted messages, which its command line cannot.
// Each sweep holds the service for seconds under load (Azure Storage has no such pause), so a
// local run sweeps every AZURITE_QUEUE_SWEEP_MS instead of every minute.
"use strict";
const constants = require("azurite/dist/src/queue/utils/constants");
const every = Number(process.env.AZURITE_QUEUE_SWEEP_MS);
if (!Number.isInteger(every) || every <= 0) {
  throw new Error(`AZURITE_QUEUE_SWEEP_MS must be a positive whole number, not ${process.env.AZURITE_QUEUE_SWEEP_MS}`);
}
constants.DEFAULT_GC_INTERVAL_MS = every;
