/**
 * WaterCraft: an embeddable Raft consensus module with a hash-chained log.
 *
 * @module
 */

export * from "./src/core/mod.ts";
