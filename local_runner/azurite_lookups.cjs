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
// 2. Removing a list of documents re-sorts every index of the collection, however short the
//    list. The queue service clears expired messages before every message operation, removing
//    the empty list it finds; its sweep deletes each unreferenced extent with a list of one, so a
//    sweep after 10,000 messages re-sorts the extents' index 10,000 times and the service stops
//    answering for minutes. Removing nothing now does nothing, and a list of one document is
//    removed as that document, which updates each index in place.
//
// Neither changes what any call answers: tests/integration/test_local_storage.py (through
// azurite_lookups_probe.cjs) holds both to it.
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

// Every removal of a list (remove([...]), findAndRemove, a resultset's remove) comes here.
const removeBatchByPositions = Loki.Collection.prototype.removeBatchByPositions;
Loki.Collection.prototype.removeBatchByPositions = function removeInPlace(positions) {
  if (positions.length === 0) {
    return undefined;
  }
  const only = positions.length === 1 ? this.data[positions[0]] : undefined;
  if (only !== null && typeof only === "object") {
    this.remove(only);
    return undefined;
  }
  return removeBatchByPositions.call(this, positions);
};
