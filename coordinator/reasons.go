package coordinator

import (
	"fmt"

	"github.com/regshift/regshift/schema"
)

// maxReason bounds one node's reason in a decision's detail, so that a few
// fit beside each other.
const maxReason = 160

// maxReasons bounds the list of reasons in a detail: room is left for what
// gateFailed puts before it, so the "… and N more" is never cut off.
const maxReasons = schema.MaxDetail - 200

// reason says why node n failed or is not healthy: its ack's outcome and
// reason, "no answer within …", or the health it was judged on.
func reason(n *Node) string {
	switch {
	case n.Failure != "":
		return schema.Truncate(n.Failure, maxReason)
	case n.Reached != schema.ReachedActive:
		if n.Pending != nil {
			return fmt.Sprintf("%s not answered yet", n.Pending.Command.Kind)
		}
		return "not active"
	case n.HealthAt.Before(n.ActiveAt):
		return "unknown: no health report since activation"
	case n.HealthDetail != "":
		return fmt.Sprintf("%s (%s)", n.Health, n.HealthDetail)
	}
	return string(n.Health)
}

// reasons lists the named nodes with why each failed, in their order,
// within maxReasons: "p1: critical (registrations missing: 1 of 2); p2:
// install: no answer within 30s; … and 3 more". Only the listed nodes'
// reasons are built.
func (r *Rollout) reasons(ids []string) string {
	return schema.ListFunc(len(ids), func(k int) string {
		return ids[k] + ": " + reason(r.Node(ids[k]))
	}, "; ", maxReasons)
}
