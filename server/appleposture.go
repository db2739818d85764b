package server

import (
	"context"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server/api"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

// DefaultAppleQueryInterval is --apple-query-interval's default.
const DefaultAppleQueryInterval = applemdm.DefaultQueryInterval

// MinAppleQueryInterval bounds --apple-query-interval from below: every
// round wakes every Apple device through APNs, which Apple throttles.
const MinAppleQueryInterval = time.Minute

// WithAppleQueryInterval sets how often each enrolled Apple device is
// asked for its posture (DeviceInformation, SecurityInfo, ProfileList,
// InstalledApplicationList); 0 keeps applemdm.DefaultQueryInterval.
func WithAppleQueryInterval(d time.Duration) Option {
	return func(c *config) error {
		if d != 0 && d < MinAppleQueryInterval {
			return fmt.Errorf("--apple-query-interval: %v is shorter than the minimum of %v", d, MinAppleQueryInterval)
		}
		c.appleQueryInterval = d
		return nil
	}
}

// appleProfiles finds a device's compliance profile as compliance
// evaluates it: its group's.
type appleProfiles struct {
	st *store.Store
	c  *compliance.Service
}

func (a appleProfiles) ProfileFor(ctx context.Context, deviceID string) (*profiles.Profile, error) {
	d, err := a.st.GetDevice(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	name, err := a.st.GroupProfile(ctx, d.GroupName)
	if err != nil {
		return nil, fmt.Errorf("group %q: %w", d.GroupName, err)
	}
	p, ok := a.c.Profile(name)
	if !ok {
		return nil, fmt.Errorf("profile %q of group %q is not loaded", name, d.GroupName)
	}
	return p, nil
}

// appleRefresh serves the on-demand posture refresh of Apple devices,
// when Apple MDM is served.
func (s *Server) appleRefresh() api.Option {
	if s.AppleMDM == nil {
		return func(*api.API) {}
	}
	return api.WithAppleRefresh(s.AppleMDM)
}
