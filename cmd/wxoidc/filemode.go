package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// secretFile is a configured file that holds a secret, by its config key.
type secretFile struct{ key, path string }

// secretFiles lists every configured file that holds a secret.
func (c Config) secretFiles() []secretFile {
	var out []secretFile
	add := func(key, path string) {
		if path != "" {
			out = append(out, secretFile{key, path})
		}
	}
	add("secret_file", c.SecretFile)
	add("admin.token_file", c.Admin.TokenFile)
	add("http.tls_key", c.HTTP.TLSKey)
	for i, a := range c.WeChat.Apps {
		key := fmt.Sprintf("wechat.apps[%d]", i)
		add(key+".secret_file", a.SecretFile)
		add(key+".push.token_file", a.Push.TokenFile)
		add(key+".push.aes_key_file", a.Push.AESKeyFile)
	}
	return out
}

// looseSecretFiles returns the secret files that users other than the
// owner may read or write (mode bits for group or others), each as a
// message naming its key. Files that cannot be read are reported where
// they are read.
func (c Config) looseSecretFiles() []error {
	if runtime.GOOS == "windows" {
		return nil // no Unix permission bits to check
	}
	var errs []error
	for _, f := range c.secretFiles() {
		fi, err := os.Stat(f.path)
		if err != nil {
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			errs = append(errs, fmt.Errorf("%s: %s is accessible to group or others (mode %04o): run chmod 600 %s (or set insecure_secret_files: true to start anyway, with a warning)", f.key, f.path, perm, f.path))
		}
	}
	return errs
}

// tightenDataDir makes wxoidc dev's data directory private: the directory
// 0700 and the files in it (database, WAL, shared memory, secret) 0600.
// A directory made by an older version, or by hand, may have been left
// readable by others; it holds phone numbers, unionids and the secret.
func tightenDataDir(dir string) error {
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(filepath.Join(dir, e.Name()), info.Mode().Perm()&^fs.FileMode(0o077)); err != nil {
				return err
			}
		}
	}
	return nil
}
