package client_test

import (
	"context"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func TestKeysAndProjectDeletion(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	admin := client.New(ts.url, adminKey)
	p, err := admin.CreateProject(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	full := client.New(ts.url, p.APIKey)
	ro, err := full.CreateKey(ctx, p.ID, "dashboards", client.ScopeRead)
	if err != nil || ro.Scope != client.ScopeRead || ro.Name != "dashboards" || ro.Prefix != ro.Key[:11] || ro.LastUsedAt != nil {
		t.Fatalf("CreateKey: %v %+v", err, ro)
	}
	keys, err := full.ListKeys(ctx, p.ID)
	if err != nil || len(keys) != 2 || keys[0].Name != kinehook.DefaultKeyName || keys[0].Scope != client.ScopeFull || keys[1].ID != ro.ID {
		t.Fatalf("ListKeys: %v %+v", err, keys)
	}
	// A read key reads, and can neither write nor manage keys.
	reader := client.New(ts.url, ro.Key)
	if _, err := reader.GetProject(ctx, p.ID); err != nil {
		t.Fatalf("read key GET: %v", err)
	}
	if _, err := reader.CreateKey(ctx, p.ID, "escalate", client.ScopeFull); client.ErrorCode(err) != kinehook.EFORBIDDEN {
		t.Fatalf("read key creating a key: %v", err)
	}
	if _, err := full.CreateKey(ctx, p.ID, "x", "owner"); client.ErrorCode(err) != kinehook.EINVALID {
		t.Fatalf("bad scope: %v", err)
	}
	if err := full.RevokeKey(ctx, p.ID, ro.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if _, err := reader.GetProject(ctx, p.ID); client.ErrorCode(err) != kinehook.EUNAUTHORIZED {
		t.Fatalf("revoked key: %v", err)
	}
	if err := full.RevokeKey(ctx, p.ID, keys[0].ID); client.ErrorCode(err) != kinehook.ECONFLICT {
		t.Fatalf("revoking the last full key: %v", err)
	}

	if err := full.DeleteProject(ctx, p.ID); client.ErrorCode(err) != kinehook.EFORBIDDEN {
		t.Fatalf("a project key deleting its project: %v", err)
	}
	if err := admin.DeleteProject(ctx, p.ID); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if _, err := admin.GetProject(ctx, p.ID); !client.IsNotFound(err) {
		t.Fatalf("deleted project: %v", err)
	}
	if err := admin.DeleteProject(ctx, p.ID); !client.IsNotFound(err) {
		t.Fatalf("deleting twice: %v", err)
	}
}
