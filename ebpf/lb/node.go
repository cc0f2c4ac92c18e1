package lb

import "fmt"

// AttachInterface loads the tc programs against this Datapath's maps and
// attaches them to the ingress and egress of ifname (in the caller's
// network namespace), pinning the links under PinDir()/links. Called again,
// for example by a restarted agent, it moves the pinned links to the newly
// loaded programs instead of attaching twice.
func (d *Datapath) AttachInterface(ifname string) error {
	objs, err := loadTC(d.pinDir)
	if err != nil {
		return fmt.Errorf("attach to %s: %w", ifname, err)
	}
	// The pinned links hold the programs, and the pins hold the maps.
	defer objs.Close()
	if err := attachTC(objs, d.pinDir, ifname); err != nil {
		return fmt.Errorf("attach to %s: %w", ifname, err)
	}
	return nil
}

// DetachInterface removes the tc programs from ifname.
func (d *Datapath) DetachInterface(ifname string) error {
	return detachTC(d.pinDir, ifname)
}

// SetNodeConfig tells the tc programs the node's address and ranges; a zero
// NodeConfig turns masquerading off.
func (d *Datapath) SetNodeConfig(cfg NodeConfig) error {
	return writeNodeConfig(d.Map(MapConfig), cfg)
}
