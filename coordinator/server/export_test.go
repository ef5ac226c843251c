package server

import "github.com/regshift/regshift/coordinator"

// PlantStep makes the server step rollouts with step instead of
// coordinator.Step; call it before Serve.
func (s *Server) PlantStep(step func(*coordinator.Rollout, coordinator.Input) coordinator.Output) {
	s.step = step
}
