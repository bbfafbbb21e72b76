// Preloaded into each of Azurite's services (node --require) by local_runner/azurite.py. Azurite
// keeps its rows in LokiJS collections, and two of its habits cost time that grows with the
// data, where Azure Storage's costs do not:
//
// 1. A point read ({PartitionKey, RowKey}, or a queue message by messageId) starts from the
//    index of the query's first key. For a table that is PartitionKey, and a tenant is one
//    partition, so every read, insert and update walks all of that tenant's rows. Here such a
//    lookup starts from the index of its most selective key (RowKey, messageId) instead. An AND
//    of equalities gives the same documents in any order, and LokiJS checks each candidate an
//    index hands it with a strict equality, so the answer is the same document.
// 2. The queue service clears expired messages before every message operation, and removing an
//    empty list rebuilds every index of the messages collection. Removing nothing now does
//    nothing, as it would have had nothing to remove.
//
// Neither changes what any call answers; tests/node/azurite_lookups.test.cjs holds both to it.
"use strict";
const path = require("path");

// The lokijs Azurite itself loads, wherever the package manager put it.
const lokiPath = require.resolve("lokijs", {
  paths: [path.dirname(require.resolve("azurite/package.json"))],
});
const Loki = require(lokiPath);

// The keys that name one document; the first one found in a query leads it.
const SELECTIVE_KEYS = ["RowKey", "messageId"];

function isPlainEquality(value) {
  return typeof value === "string" || typeof value === "number";
}

function leadingWithSelectiveKey(collection, query) {
  if (query === null || typeof query !== "object" || Array.isArray(query)) {
    return query;
  }
  const keys = Object.keys(query);
  if (keys.length < 2) {
    return query;
  }
  const lead = SELECTIVE_KEYS.find(
    (key) => keys.includes(key) && isPlainEquality(query[key]) &&
      Object.prototype.hasOwnProperty.call(collection.binaryIndices, key),
  );
  if (lead === undefined || keys[0] === lead) {
    return query;
  }
  const reordered = { [lead]: query[lead] };
  for (const key of keys) {
    if (key !== lead) {
      reordered[key] = query[key];
    }
  }
  return reordered;
}

const findOne = Loki.Collection.prototype.findOne;
Loki.Collection.prototype.findOne = function findOneFromSelectiveIndex(query) {
  return findOne.call(this, leadingWithSelectiveKey(this, query));
};

const remove = Loki.Collection.prototype.remove;
Loki.Collection.prototype.remove = function removeUnlessNothing(doc) {
  if (Array.isArray(doc) && doc.length === 0) {
    return undefined;
  }
  return remove.call(this, doc);
};

module.exports = { leadingWithSelectiveKey };
