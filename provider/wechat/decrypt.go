package wechat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// DecryptData decrypts legacy Mini Program encryptedData (from the old
// getPhoneNumber button, wx.getUserInfo and friends) with the user's
// session key: AES-128-CBC with PKCS#7 padding, all three inputs in
// standard base64. It returns the decrypted JSON after checking that its
// watermark appid equals appID.
//
// Errors: [ErrMalformed] for input that is not base64 of the right length;
// [ErrSessionKeyMismatch] when the data does not decrypt to JSON (bad
// padding or garbage), which in practice means the session key rotated
// since the client produced the data; [ErrWatermarkMismatch] when the
// watermark is missing or names another app.
//
// Spaces in encryptedData and iv are read as '+', undoing a common
// form-encoding mistake.
//
// https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/signature.html
func DecryptData(sessionKey, encryptedData, iv, appID string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != aes.BlockSize {
		return nil, fmt.Errorf("%w: session key must be base64 of 16 bytes", ErrMalformed)
	}
	ivb, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(iv, " ", "+"))
	if err != nil || len(ivb) != aes.BlockSize {
		return nil, fmt.Errorf("%w: iv must be base64 of 16 bytes", ErrMalformed)
	}
	ct, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(encryptedData, " ", "+"))
	if err != nil || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: encryptedData must be base64 of whole AES blocks", ErrMalformed)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(pt, ct)
	pt, ok := unpadPKCS7(pt, aes.BlockSize)
	if !ok || !json.Valid(pt) {
		return nil, ErrSessionKeyMismatch
	}
	var w struct {
		Watermark *Watermark `json:"watermark"`
	}
	if err := json.Unmarshal(pt, &w); err != nil {
		// Valid JSON but not an object, or a watermark of the wrong shape.
		return nil, ErrSessionKeyMismatch
	}
	if w.Watermark == nil || appID == "" || w.Watermark.AppID != appID {
		return nil, ErrWatermarkMismatch
	}
	return pt, nil
}

// unpadPKCS7 removes PKCS#7 padding, checking every pad byte.
func unpadPKCS7(b []byte, blockSize int) ([]byte, bool) {
	if len(b) == 0 || len(b)%blockSize != 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n == 0 || n > blockSize {
		return nil, false
	}
	for _, p := range b[len(b)-n:] {
		if int(p) != n {
			return nil, false
		}
	}
	return b[:len(b)-n], true
}

// RawDataSignature returns sha1_hex(rawData + sessionKey), the signature
// WeChat gives alongside rawData.
func RawDataSignature(rawData, sessionKey string) string {
	sum := sha1.Sum([]byte(rawData + sessionKey))
	return hex.EncodeToString(sum[:])
}

// VerifyRawData reports whether signature is the signature of rawData under
// sessionKey, comparing in constant time (case-insensitively).
func VerifyRawData(rawData, signature, sessionKey string) bool {
	want := RawDataSignature(rawData, sessionKey)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(signature))) == 1
}

// SessionSignature returns the user login-state signature of WeChat's
// session-signed APIs: lowercase hex of HMAC-SHA256 keyed by the session
// key string itself (not its decoded bytes) over message, which is "" for
// GET calls such as checksession.
func SessionSignature(sessionKey, message string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	m.Write([]byte(message))
	return hex.EncodeToString(m.Sum(nil))
}
