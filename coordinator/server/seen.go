package server

import (
	"maps"
	"slices"
	"time"

	"github.com/regshift/regshift/schema"
)

// seenRequests are the requests handled within their validity window: a
// request whose id is here is dropped, so a signed request replayed later
// (a resume after a later pause) does nothing. Each is a SeenRequest
// record on the state topic, written with the effects of the job that
// handled it, so the next leader drops it too; once expired (the verifier
// refuses the request as too old from then on) it is forgotten and its
// record deleted. At most schema.MaxSeenRequests are held. The owner
// goroutine alone uses it.
type seenRequests struct {
	byID    map[string]schema.SeenRequest
	unsaved map[string]bool // ids whose record is still to be written
	expired map[string]bool // ids whose record is still to be deleted
}

func newSeenRequests() seenRequests {
	return seenRequests{byID: map[string]schema.SeenRequest{}, unsaved: map[string]bool{}, expired: map[string]bool{}}
}

// get returns the seen request of id.
func (s *seenRequests) get(id string) (schema.SeenRequest, bool) {
	r, ok := s.byID[id]
	return r, ok
}

// full reports whether no more requests can be remembered.
func (s *seenRequests) full() bool { return len(s.byID) >= schema.MaxSeenRequests }

// add remembers a request handled; its record is written by the next save.
func (s *seenRequests) add(r schema.SeenRequest) {
	s.byID[r.RequestID] = r
	s.unsaved[r.RequestID] = true
	delete(s.expired, r.RequestID)
}

// restore remembers what a new leader replayed: the records not yet
// expired; the expired ones are deleted by the next save.
func (s *seenRequests) restore(recs map[string]schema.SeenRequest, now time.Time) {
	for id, r := range recs {
		if now.After(r.ExpiresAt) {
			s.expired[id] = true
			continue
		}
		s.byID[id] = r
	}
}

// expire forgets the requests whose validity ended before now.
func (s *seenRequests) expire(now time.Time) {
	for id, r := range s.byID {
		if now.After(r.ExpiresAt) {
			delete(s.byID, id)
			delete(s.unsaved, id)
			s.expired[id] = true
		}
	}
}

// toWrite returns the records still to write, in id order, and what to
// call once they are written.
func (s *seenRequests) toWrite() (recs []schema.Message, written func()) {
	ids := slices.Sorted(maps.Keys(s.unsaved))
	for _, id := range ids {
		r := s.byID[id]
		recs = append(recs, &r)
	}
	return recs, func() {
		for _, id := range ids {
			delete(s.unsaved, id)
		}
	}
}

// toDelete returns the keys of the expired records still to delete, and
// what to call once they are.
func (s *seenRequests) toDelete() (keys []string, deleted func()) {
	ids := slices.Sorted(maps.Keys(s.expired))
	for _, id := range ids {
		keys = append(keys, schema.SeenRequestKey(id))
	}
	return keys, func() {
		for _, id := range ids {
			delete(s.expired, id)
		}
	}
}
