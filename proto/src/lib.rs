//! Generated code for the `isac.v1` wire contract. See `isac/v1/isac.proto`.
#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("isac.v1");
}

/// The encoded `FileDescriptorSet` of `isac.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("isac_v1_descriptor");

// Conversions at the edge between wire messages and core types, so hub,
// agent, tests and bench share one copy.

impl From<isac_core::Envelope> for v1::Envelope {
    fn from(e: isac_core::Envelope) -> Self {
        let isac_core::Envelope {
            payload_type,
            payload,
            signatures,
        } = e;
        v1::Envelope {
            payload_type,
            payload,
            signatures: signatures
                .into_iter()
                .map(|isac_core::Signature { keyid, sig }| v1::Signature { keyid, sig })
                .collect(),
        }
    }
}

impl From<v1::Envelope> for isac_core::Envelope {
    fn from(e: v1::Envelope) -> Self {
        let v1::Envelope {
            payload_type,
            payload,
            signatures,
        } = e;
        isac_core::Envelope {
            payload_type,
            payload,
            signatures: signatures
                .into_iter()
                .map(|v1::Signature { keyid, sig }| isac_core::Signature { keyid, sig })
                .collect(),
        }
    }
}

impl From<&isac_core::audience::AudienceOpening> for v1::AudienceOpening {
    fn from(o: &isac_core::audience::AudienceOpening) -> Self {
        v1::AudienceOpening {
            entry: o.entry.to_string(),
            salt: o.salt.clone(),
        }
    }
}

impl TryFrom<v1::AudienceOpening> for isac_core::audience::AudienceOpening {
    type Error = isac_core::tlp::BadAudience;

    fn try_from(o: v1::AudienceOpening) -> Result<Self, Self::Error> {
        let v1::AudienceOpening { entry, salt } = o;
        Ok(isac_core::audience::AudienceOpening {
            entry: entry.parse()?,
            salt,
        })
    }
}

impl v1::PublishRequest {
    /// A publish request for a signed envelope and its audience openings.
    pub fn signed(
        envelope: isac_core::Envelope,
        openings: &[isac_core::audience::AudienceOpening],
    ) -> Self {
        v1::PublishRequest {
            envelope: Some(envelope.into()),
            audience_openings: openings.iter().map(Into::into).collect(),
            scrub_overrides: Vec::new(),
        }
    }
}
