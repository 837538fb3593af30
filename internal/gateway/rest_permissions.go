package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/wharfmq/wharf/internal/auth"
	"github.com/wharfmq/wharf/internal/gateway/service"
)

// restPermission is one user's permissions in one vhost, as RabbitMQ's
// management API writes them.
type restPermission struct {
	User      string `json:"user"`
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// allPermissions lists every user's permissions, by user then vhost.
func (a *restAPI) allPermissions(only string) []restPermission {
	out := []restPermission{}
	for _, u := range a.users.Users() {
		if only != "" && u.Name != only {
			continue
		}
		perms := a.users.Permissions(u.Name)
		vhosts := make([]string, 0, len(perms))
		for v := range perms {
			vhosts = append(vhosts, v)
		}
		slices.Sort(vhosts)
		for _, v := range vhosts {
			p := perms[v]
			out = append(out, restPermission{User: u.Name, Vhost: v, Configure: p.Configure, Write: p.Write, Read: p.Read})
		}
	}
	return out
}

func (a *restAPI) listPermissions(w http.ResponseWriter, r *http.Request) error {
	return a.reply(w, http.StatusOK, struct {
		Permissions []restPermission `json:"permissions"`
	}{a.allPermissions("")})
}

func (a *restAPI) userPermissions(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, ok := a.users.Lookup(name); !ok {
		return service.Errorf(service.CodeNotFound, "no user '%s'", name)
	}
	return a.reply(w, http.StatusOK, struct {
		Permissions []restPermission `json:"permissions"`
	}{a.allPermissions(name)})
}

// putPermission sets what a user may do in a vhost: three regular
// expressions over resource names; an empty one allows nothing.
func (a *restAPI) putPermission(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Configure *string `json:"configure"`
		Write     *string `json:"write"`
		Read      *string `json:"read"`
	}
	if err := a.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Configure == nil || req.Write == nil || req.Read == nil {
		return invalid("configure, write and read are all required (an empty string allows nothing)")
	}
	vhost, name := r.PathValue("vhost"), r.PathValue("user")
	if !a.b.VhostExists(vhost) {
		return service.Errorf(service.CodeNotFound, "no vhost '%s'", vhost)
	}
	_, existed := a.users.Permissions(name)[vhost]
	p := auth.Permission{Configure: *req.Configure, Write: *req.Write, Read: *req.Read}
	if err := a.users.SetPermission(name, vhost, p); err != nil {
		if errors.Is(err, auth.ErrNoUser) {
			return service.Errorf(service.CodeNotFound, "no user '%s'", name)
		}
		return invalid("%v", err)
	}
	a.logger.Info("permission set over REST", "user", name, "vhost", vhost, "configure", p.Configure, "write", p.Write, "read", p.Read)
	return a.reply(w, created(!existed), restPermission{User: name, Vhost: vhost, Configure: p.Configure, Write: p.Write, Read: p.Read})
}

func (a *restAPI) deletePermission(w http.ResponseWriter, r *http.Request) error {
	vhost, name := r.PathValue("vhost"), r.PathValue("user")
	if _, ok := a.users.Permissions(name)[vhost]; !ok {
		return service.Errorf(service.CodeNotFound, "user '%s' has no permissions in vhost '%s'", name, vhost)
	}
	if err := a.users.ClearPermission(name, vhost); err != nil {
		return fmt.Errorf("clearing the permissions of '%s' in '%s': %w", name, vhost, err)
	}
	a.logger.Info("permission cleared over REST", "user", name, "vhost", vhost)
	return a.reply(w, http.StatusOK, restDeleted{Deleted: name})
}
