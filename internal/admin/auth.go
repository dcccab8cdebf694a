package admin

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"slices"
)

// Ext fields of a signed request (SessionCredentials.java).
const (
	fieldAccessKey = "AccessKey"
	fieldSignature = "Signature"
)

// credentials of an ACL account. The type has no String method and its
// fields are unexported, so that the secret does not end up in a log line by
// accident.
type credentials struct {
	accessKey string
	secretKey string
}

// signRequest adds the AccessKey and Signature ext fields to ext.
func (c *credentials) signRequest(ext map[string]string, body []byte) {
	ext[fieldAccessKey] = c.accessKey
	ext[fieldSignature] = signature(ext, body, c.secretKey)
}

// signature is what the broker checks (AclUtils.combineRequestContent and
// calSignature; DefaultAuthenticationContextBuilder in 5.x): the values of
// all ext fields but Signature, in the order of their sorted keys,
// concatenated, then the body; HMAC-SHA1 with the secret key; standard
// base64.
func signature(ext map[string]string, body []byte, secretKey string) string {
	keys := make([]string, 0, len(ext))
	for k := range ext {
		if k != fieldSignature {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	mac := hmac.New(sha1.New, []byte(secretKey))
	for _, k := range keys {
		mac.Write([]byte(ext[k]))
	}
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
