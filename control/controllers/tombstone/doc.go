// Package tombstone reads the object out of an informer's delete event.
//
// An informer that misses a delete while disconnected learns of it only on
// relist, and then hands its handlers a cache.DeletedFinalStateUnknown
// holding the last state it knew instead of the object itself. Every
// delete handler has to look inside it, or deletions seen that way are
// silently dropped.
package tombstone
