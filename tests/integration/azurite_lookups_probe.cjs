// Run by tests/integration/test_local_storage.py, with and without local_runner/azurite_lookups.cjs
// preloaded: builds LokiJS collections the way Azurite does (the lokijs Azurite loads) and prints,
// as JSON, what lookups answer and how much work they did.
"use strict";
const path = require("path");

const lokiPath = require.resolve("lokijs", {
  paths: [path.dirname(require.resolve("azurite/package.json"))],
});
const Loki = require(lokiPath);

const ROWS = 2000;
const db = new Loki("probe.db");
// As Azurite's table service creates each table's collection.
const rows = db.addCollection("rows", { indices: ["PartitionKey", "RowKey"] });
for (let index = 0; index < ROWS; index += 1) {
  rows.insert({ PartitionKey: "tenant-a", RowKey: `+318550${String(index).padStart(5, "0")}` });
}
// Keys LokiJS's index compares as numbers, and one RowKey in two partitions.
rows.insert({ PartitionKey: "tenant-a", RowKey: "31855000001", note: "no plus" });
rows.insert({ PartitionKey: "tenant-a", RowKey: "1" , note: "one" });
rows.insert({ PartitionKey: "tenant-a", RowKey: "1.0", note: "one point zero" });
rows.insert({ PartitionKey: "tenant-b", RowKey: "+31855000001", note: "other tenant" });

let comparisons = 0;
const eq = Loki.LokiOps.$eq;
Loki.LokiOps.$eq = function countedEq(a, b) {
  comparisons += 1;
  return eq(a, b);
};
const found = rows.findOne({ PartitionKey: "tenant-a", RowKey: "+31855001500" });
const scanned = comparisons;
Loki.LokiOps.$eq = eq;

function lookUp(partitionKey, rowKey) {
  const doc = rows.findOne({ PartitionKey: partitionKey, RowKey: rowKey });
  return doc === null ? null : [doc.PartitionKey, doc.RowKey, doc.note || null];
}

// As Azurite's queue service creates its messages collection.
const messages = db.addCollection("messages", {
  indices: ["accountName", "queueName", "messageId", "visibleTime"],
});
for (let index = 0; index < ROWS; index += 1) {
  messages.insert({ accountName: "dev", queueName: "q", messageId: `m${index}`, visibleTime: index });
}
let rebuilds = 0;
const ensureAllIndexes = Loki.Collection.prototype.ensureAllIndexes;
Loki.Collection.prototype.ensureAllIndexes = function countedRebuild(force) {
  rebuilds += 1;
  return ensureAllIndexes.call(this, force);
};
messages.remove([]);
const rebuildsForNothing = rebuilds;
// As the queue service's sweep deletes an extent: findAndRemove, a list of one.
messages.findAndRemove({ messageId: "m7" });
const rebuildsForOne = rebuilds - rebuildsForNothing;
messages.remove(messages.find({ messageId: { $in: ["m9", "m10"] } }));
const message = messages.findOne({ accountName: "dev", queueName: "q", messageId: "m8" });

process.stdout.write(JSON.stringify({
  found: [found.PartitionKey, found.RowKey],
  comparisons: scanned,
  lookups: {
    plus: lookUp("tenant-a", "+31855000001"),
    noPlus: lookUp("tenant-a", "31855000001"),
    one: lookUp("tenant-a", "1"),
    onePointZero: lookUp("tenant-a", "1.0"),
    otherTenant: lookUp("tenant-b", "+31855000001"),
    missing: lookUp("tenant-b", "+31855000002"),
    otherPartitionOnly: lookUp("tenant-c", "1"),
  },
  rebuildsForNothing,
  rebuildsForOne,
  messagesLeft: messages.count(),
  removedGone: messages.findOne({ accountName: "dev", queueName: "q", messageId: "m7" }) === null,
  message: message === null ? null : message.messageId,
  pairGone: messages.find({ messageId: { $in: ["m9", "m10"] } }).length === 0,
  byIndex: [0, 6, 8, 11, 1999].map(
    (index) => (messages.findOne({ messageId: `m${index}` }) || {}).visibleTime ?? null),
}));
