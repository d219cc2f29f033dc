// name: video_profile_history
// description: Every profile of a video (one per model version), newest first, with its top predicted diseases.
// param: video_id id - the video

MATCH (v:Video {id: $video_id})-[:HAS_PROFILE]->(p:Profile)
// The diseases each profile predicts, best rank first (collected per profile).
OPTIONAL MATCH (p)-[pr:PREDICTS]->(d:Disease)
WITH p, pr, d ORDER BY pr.rank
WITH p, [x IN collect({id: d.id, name: d.name, prob: pr.prob, rank: pr.rank}) WHERE x.id IS NOT NULL] AS diseases
RETURN p.id AS profile_id, p.model_version AS model_version, p.created_at AS created_at, p.latest AS latest,
       p.popularity AS popularity, p.popularity_pct AS popularity_pct, p.quality AS quality, diseases
// created_at is an ISO 8601 string in UTC, so string order is time order.
ORDER BY created_at DESC, profile_id
