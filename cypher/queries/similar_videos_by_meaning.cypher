// name: similar_videos_by_meaning
// description: Videos whose text is closest in meaning to the given video's (cosine of the cross-lingual sentence vectors, vector index video_text_vector); GET /videos/{id}/similar adds the shared graph concepts to this ranking, similar_videos ranks by the fused profile embedding instead.
// param: video_id id - the video to start from
// param: k int[1..100] 10 how many similar videos to return

// The start video must have a text vector (written with its profile when OVP_OPEN_TAGS=1); otherwise no rows.
MATCH (v:Video {id: $video_id})
WHERE v.text_vector IS NOT NULL
// Approximate nearest neighbours; one more, because the video finds itself first.
CALL db.index.vector.queryNodes('video_text_vector', $k + 1, v.text_vector) YIELD node, score
WITH v, node, score
WHERE node <> v
OPTIONAL MATCH (node)-[:HAS_PROFILE]->(p:Profile {latest: true})
// score is the index's (1 + cosine) / 2
RETURN node.id AS video_id, node.title AS title, node.platform AS platform, score,
       p.quality AS quality, p.popularity_pct AS popularity_pct
ORDER BY score DESC, video_id
LIMIT $k
